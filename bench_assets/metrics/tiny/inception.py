"""A tiny random-weight stand-in for the FID Inception, built in code: for ``bench demo`` and the tests.

The real FID Inception (``metrics/inception.py``) is 24M parameters and
2,048-d; run on a few hundred 299² images on a CPU it would cost the demo a
minute, and every Fréchet distance a 2,048² eigendecomposition. The stand-in
keeps what the pipeline exercises — the same preprocessing (``clean`` /
``legacy`` resize to 299², [-1, 1]), a torch network loaded from a
``.safetensors`` file, batched features — with a two-convolution net and 64-d
features. Its numbers mean nothing; the fidelity tests use the real
architecture (``inception.build_fid_inception``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TINY_INCEPTION_FILE = "tiny_inception.safetensors"
TINY_INCEPTION_DIM = 64


def tiny_inception_net() -> Any:
    """The stand-in's architecture: 299² → two strided convolutions → global mean → 64-d."""
    import torch  # heavy; only when a net is built or loaded

    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, kernel_size=8, stride=8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, kernel_size=4, stride=4), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, TINY_INCEPTION_DIM),
    ).eval().requires_grad_(False)


def load_tiny_inception(path: str | Path) -> Any:
    """The stand-in with the weights saved at ``path``."""
    from safetensors.torch import load_file  # with torch, only when loaded

    net = tiny_inception_net()
    net.load_state_dict(load_file(str(path)))
    return net


def build_tiny_inception(out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Write the stand-in's random weights to ``out_dir`` (once); return the inception extractors' options."""
    import torch  # heavy; only when the demo builds its scorers
    from safetensors.torch import save_file

    path = Path(out_dir) / TINY_INCEPTION_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = tiny_inception_net()
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return {"tiny": str(path)}
