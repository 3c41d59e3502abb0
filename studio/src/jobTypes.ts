import type { LoraSpec } from '../../src/flows/contracts/generate';

/** An attempt's steps, in the order they run. */
export const ATTEMPT_STEPS = ['prompt', 'generate', 'validate'] as const;

/** The job as GET /jobs/:id shows it (src/api/jobView.ts), the parts the page reads. */
export type Check = { name: string; passed: boolean; value: number | string | boolean | null; threshold?: number; detail?: string };
export type Verdict = { passed: boolean; score: number; checks: Check[]; feedback: string; best?: number; candidates?: (Omit<Verdict, 'candidates' | 'best'> & { imageKey: string })[] };
export type StepView = { status: string; started_at: string | null; finished_at: string | null; duration_ms: number | null; tries: number | null; error?: string };
export type Attempt = {
  number: number;
  status: string;
  seed: number;
  prompt: string | null;
  images: { key: string; width: number; height: number; content_type: string }[];
  image_url: string | null;
  verdict: Verdict | null;
  steps: Partial<Record<(typeof ATTEMPT_STEPS)[number], StepView>>;
};
export type JobError = { code: string; message: string; step?: string; attempt?: number };
export type JobView = {
  job_id: string;
  status: string;
  parameters: Record<string, string>;
  candidates: number;
  loras: LoraSpec[];
  attempts: Attempt[];
  result: { attempt: number; image_key: string; score: number; url?: string } | null;
  report: { step: StepView; available: boolean } | null;
  error: JobError | null;
  cycle: number;
  history: { cycle: number; status: string; error?: JobError }[];
  created_at: string | null;
  finished_at: string | null;
};
export type FailureReport = { summary: string; failedChecks: { name: string; count: number }[]; suggestions: string[] };
