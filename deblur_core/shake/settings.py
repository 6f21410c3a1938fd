"""Settings of the blind camera-shake estimator: one frozen record, passed in (never module state)."""
from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["ShakeSettings", "DEFAULT", "PRIORS"]


@dataclass(frozen=True)
class ShakeSettings:
    """Knobs of :func:`deblur_core.shake.estimate_kernel`. The defaults are Pan et al.'s published ones
    where they exist (CVPR 2014 / 2016 reference code); why each of ours is set as it is: see
    ``docs/experiments/shake.md``."""

    # --- latent (sharp image) step: L0 gradients plus an L0 pixel prior ---
    pixel_prior: str = "intensity"  # "intensity" (Pan 2014), "dark" (dark channel, Pan 2016), "none" (Xu 2013)
    lam_pixel: float = 4e-3         # weight of the pixel prior (Pan: 4e-3)
    lam_grad: float = 4e-3          # weight of the L0 gradient prior (Pan: 4e-3)
    dark_patch: int = 35            # dark channel patch side in px, fixed at every level (Pan: 35)
    max_pixel_beta: float = 8.0     # the pixel prior's splitting weight stops here (Pan: 2^3)
    kappa: float = 3.0              # HQS rate (Pan: 2; 3 takes ~16 solves a latent instead of ~25, no loss)
    # --- kernel step ---
    iterations: int = 4             # latent/kernel alternations per pyramid level (Pan: 5)
    kernel_weight: float = 2.0      # Tikhonov weight of the kernel step on [0, 1] images (Pan: 2)
    cg_iterations: int = 20
    step_cut: float = 0.05          # kernel values below this share of the max are cut each step (Pan: 0.05)
    min_component: float = 0.1      # 8-connected kernel components with less mass are pruned (Pan: 0.1)
    final_cut: float = 0.05         # the final kernel's values below max * this are cut (Pan: 1/20)
    edge_count: int = 20            # Cho & Lee: at least edge_count * kernel side strong gradients per bin
    # --- image ---
    linear: bool = True             # estimate in linear light (True, where blur happens) or on sRGB values (Pan)
    denoise: bool = True            # the region goes through the denoiser network first
    clip_level: float = 0.98        # a channel at or above this (sRGB-encoded) is clipped
    coarsest: int = 5               # the pyramid goes down to a kernel of about this size (Pan: 5) ...
    min_image: int = 100            # ... or to an image of this many px on its shorter side
    max_side: int = 900             # the estimation region's side at the finest level (px)
    work_pixels: int = 1_300_000    # photos above this many pixels are estimated downscaled
    window_fraction: float = 0.09   # size not given: window = this share of the working photo's longer side
    min_window: int = 25
    max_window: int = 75            # at the working scale; a downscaled photo's kernel grows with it

    def but(self, **changes) -> "ShakeSettings":
        """A copy with ``changes`` (for benches and tests)."""
        return replace(self, **changes)


DEFAULT = ShakeSettings()

# The estimator under the names the product uses (``deblur(shake_method=...)``, ``--shake-method``): the L0
# intensity prior first (closest to the published kernels of Lai's real photos, docs/experiments/shake.md),
# the dark channel the second candidate.
PRIORS = {"intensity": DEFAULT, "dark": DEFAULT.but(pixel_prior="dark")}
