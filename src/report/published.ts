/**
 * The published figures a report compares against (../shared/DESIGN.md): ImageNet top-1 from the
 * FQ-ViT README, and computation efficiency (GOPS per DSP, W8A8) from the P2-ViT paper.
 */
export interface PublishedAccuracy {
  model: string;
  /** Our preset name for the same architecture. */
  preset: string;
  floatTop1: number;
  /** FQ-ViT, W8/A8/Attn4. */
  fqvitTop1: number;
}

export const PUBLISHED_ACCURACY: readonly PublishedAccuracy[] = [
  { model: "DeiT-T", preset: "deit_tiny", floatTop1: 72.21, fqvitTop1: 71.07 },
  { model: "DeiT-S", preset: "deit_small", floatTop1: 79.85, fqvitTop1: 78.4 },
  { model: "DeiT-B", preset: "deit_base", floatTop1: 81.85, fqvitTop1: 80.85 },
];

export interface PublishedEfficiency {
  design: string;
  model: string;
  preset: string;
  gopsPerDsp: number;
}

export const PUBLISHED_EFFICIENCY: readonly PublishedEfficiency[] = [
  { design: "P2-ViT", model: "DeiT-T", preset: "deit_tiny", gopsPerDsp: 0.89 },
  { design: "P2-ViT", model: "DeiT-S", preset: "deit_small", gopsPerDsp: 0.923 },
  { design: "HeatViT", model: "DeiT-T", preset: "deit_tiny", gopsPerDsp: 0.16 },
  { design: "HeatViT", model: "DeiT-S", preset: "deit_small", gopsPerDsp: 0.174 },
  { design: "Auto-ViT-Acc", model: "DeiT-S", preset: "deit_small", gopsPerDsp: 0.367 },
];
