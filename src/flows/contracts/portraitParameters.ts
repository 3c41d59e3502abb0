import { z } from 'zod';

/**
 * The portrait vocabulary (from the APEX Portrait Generator seed). Each value carries the phrase the
 * prompt step builds on, so adding a value is one line here and nothing else.
 */
export const PORTRAIT_VOCABULARY = {
  purpose: {
    professional_linkedin: 'a professional LinkedIn profile photo',
    corporate_headshot: 'a corporate headshot for a company website',
    executive_portrait: 'an executive portrait for leadership pages and press',
    academic_profile: 'a university or conference speaker profile photo',
    creative_portfolio: 'a portrait for a creative portfolio',
    personal_branding: 'a personal branding portrait',
    social_media: 'a social media profile picture',
    dating_profile: 'a natural, flattering dating profile photo',
  },
  attire: {
    business_formal: 'a tailored dark suit or equivalent formal business wear',
    business_casual: 'business casual clothing, such as a blazer over an open-collar shirt',
    smart_casual: 'smart casual clothing',
    casual: 'neat casual clothing',
    creative: 'stylish, creative-industry clothing',
    keep_original: 'the same clothing as in the reference photo',
  },
  background: {
    modern_office: 'a softly blurred modern office',
    neutral_studio: 'a neutral grey studio backdrop',
    solid_white: 'a plain white background',
    solid_dark: 'a plain dark charcoal background',
    outdoor_urban: 'a softly blurred city street',
    outdoor_nature: 'softly blurred greenery outdoors',
    library: 'a softly blurred library with bookshelves',
  },
  vibe: {
    confident: 'confident and composed',
    approachable: 'approachable, with a warm smile',
    authoritative: 'authoritative and serious',
    friendly: 'friendly and relaxed',
    creative: 'creative and expressive',
    calm: 'calm and thoughtful',
  },
  lighting: {
    studio_softbox: 'even studio softbox lighting',
    natural_window: 'soft natural window light',
    golden_hour: 'warm golden-hour light',
    rembrandt: 'dramatic Rembrandt lighting',
    high_key: 'bright high-key lighting',
    low_key: 'moody low-key lighting',
  },
} as const;

/** Output size per resolution: portrait 4:5, sides multiples of 16 as FLUX requires. */
export const RESOLUTIONS = {
  '1k': { width: 816, height: 1024 },
  '2k': { width: 1632, height: 2048 },
  '4k': { width: 3264, height: 4096 },
} as const;

type Vocabulary = typeof PORTRAIT_VOCABULARY;
const choice = <K extends keyof Vocabulary>(key: K) =>
  z.enum(Object.keys(PORTRAIT_VOCABULARY[key]) as [keyof Vocabulary[K] & string, ...(keyof Vocabulary[K] & string)[]]);

export const PortraitParameters = z
  .strictObject({
    purpose: choice('purpose').default('professional_linkedin'),
    attire: choice('attire').default('business_casual'),
    background: choice('background').default('neutral_studio'),
    vibe: choice('vibe').default('confident'),
    lighting: choice('lighting').default('studio_softbox'),
    resolution: z.enum(Object.keys(RESOLUTIONS) as [keyof typeof RESOLUTIONS]).default('1k'),
  })
  .describe('What the portrait should look like; every field is optional and has a default.');

export type PortraitParameters = z.infer<typeof PortraitParameters>;
