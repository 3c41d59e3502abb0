/**
 * Which of an identity's photos show the person most typically: ranked by the mean face distance to
 * the identity's other photos (the medoid first), so a portrait's few references are the photos
 * that agree most with all the others, not an odd angle, light or expression. Ties keep upload order.
 */
export function rankPhotosByTypicality(embeddings: number[][]): number[] {
  const distance = (a: number[], b: number[]) => Math.sqrt(a.reduce((sum, v, i) => sum + (v - b[i]) ** 2, 0));
  const meanDistance = embeddings.map((e, i) => {
    const others = embeddings.filter((_, j) => j !== i);
    return others.length === 0 ? 0 : others.reduce((sum, o) => sum + distance(e, o), 0) / others.length;
  });
  return embeddings.map((_, i) => i).sort((a, b) => meanDistance[a] - meanDistance[b] || a - b);
}

/** prepare_identity's embeddings file (gpu-worker steps/prepare_identity.py): one 128-d embedding per photo, in order. */
export function embeddingsOf(json: unknown): number[][] {
  const photos = (json as { photos?: { embedding?: unknown }[] })?.photos;
  if (!Array.isArray(photos) || !photos.every((p) => Array.isArray(p.embedding) && p.embedding.every((v) => typeof v === 'number'))) {
    throw new Error('the identity embeddings file is not what prepare_identity writes');
  }
  return photos.map((p) => p.embedding as number[]);
}
