/**
 * Per-tenant slots within one process: a tenant holds at most `perTenant` at once, so one tenant's
 * slow work (the notifier's deliveries to a receiver that drips its answer) never takes every
 * place of a worker's concurrency. `tryTake` answers at once; a caller that gets no slot hands its
 * work back (the notifier delays the job) instead of holding a place while it waits.
 */
export class TenantSlots {
  private readonly held = new Map<string, number>();

  constructor(private readonly perTenant: number) {}

  /** A release function when the tenant is under its share, else undefined. */
  tryTake(tenant: string): (() => void) | undefined {
    const n = this.held.get(tenant) ?? 0;
    if (n >= this.perTenant) return undefined;
    this.held.set(tenant, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(tenant) ?? 1) - 1;
      if (left === 0) this.held.delete(tenant);
      else this.held.set(tenant, left);
    };
  }
}
