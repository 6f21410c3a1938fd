"""Where the classic camera-shake estimator used to live: it is now the :mod:`deblur_core.classic`
package. Kept importable for bench/bench_shake.py (``blind.estimate_kernel``, ``blind.DEFAULT_SETTINGS``
and, for its research ``--latent-net`` path, the step functions under their old names); new code imports
:mod:`deblur_core.classic`."""
from .classic import *  # noqa: F401,F403
from .classic import __all__  # noqa: F401
from .classic.cleanup import clean_kernel as _clean_kernel, final_trim as _final_trim  # noqa: F401
from .classic.fft import irfft2, rfft2  # noqa: F401
from .classic.steps import kernel_least_squares as _kernel_ls  # noqa: F401
from .shake.kernel_step import delta as _delta  # noqa: F401
from .shake.latent import forward_gradients as _grad  # noqa: F401
