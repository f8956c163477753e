r"""Gaussian-mixture data distributions with an exact diffusion model.

If the data is :math:`p_0 = \sum_k w_k \mathcal N(\mu_k, C_k)` and :math:`x_t = \alpha x_0 + \sigma
\varepsilon`, every noised marginal is again a mixture,
:math:`p_t(x) = \sum_k w_k \mathcal N(x; \alpha\mu_k, \alpha^2 C_k + \sigma^2 I)`, so the noise
prediction :math:`\hat\varepsilon = -\sigma\nabla\log p_t`, the data prediction
:math:`\hat x_0 = E[x_0 | x_t]`, the score and the velocity are closed-form. Each component is stored
by the eigen-decomposition :math:`C_k = U_k \operatorname{diag}(\lambda_k) U_k^T`, so
:math:`(\alpha^2 C_k + \sigma^2 I)^{-1}` costs one matrix product for any noise level.

Both predictions are computed directly (not one from the other), so they stay finite at
:math:`\alpha = 0` (pure noise) and :math:`\sigma = 0` (clean data), and
:math:`x = \alpha\hat x_0 + \sigma\hat\varepsilon` holds exactly. They depend on
:math:`(x, \alpha, \sigma)` only through the scale-free pair :math:`(x/r, \alpha/r, \sigma/r)`
for any :math:`r > 0`; samplers use this to place intermediate points at any log-SNR.

Array-API code: the arrays live in the namespace of ``x`` (NumPy, CuPy, ``array_api_strict``); the
mixture's own parameters are host NumPy and moved once per namespace.
"""
from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field

import array_api_compat
import numpy as np

__all__ = ["GaussianMixture", "TARGETS", "make_target", "guided_model", "CHUNK_ELEMENTS"]

#: the most elements (components × points × dimensions) each ``(K, n, d)`` temporary of one evaluation of
#: the exact model may hold (8 MiB); more points are evaluated in chunks. One evaluation makes ~8 such
#: temporaries: image16 (1 component, 256 dimensions) at its largest n_samples (10⁶) took 16 GB at once,
#: ring8 (8 components, 2 dimensions) 1 GB.
CHUNK_ELEMENTS = 2**20


@dataclass(frozen=True)
class GaussianMixture:
    """A Gaussian mixture :math:`\\sum_k w_k N(\\mu_k, C_k)` in ``dim`` dimensions.

    Parameters
    ----------
    weights : (K,) array
        Non-negative weights with a positive sum (normalised here).
    means : (K, d) array
    covariances : (K, d, d) or (K, d) or (K,) array
        Full symmetric positive-definite matrices, diagonals, or isotropic variances.
    labels : (K,) int array, optional
        Class of each component (for class-conditional targets and guidance).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    labels: np.ndarray | None = None
    name: str = "gmm"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=float).reshape(-1)
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
            raise ValueError(f"weights must be non-negative with a positive sum, got {w!r}")
        mu = np.atleast_2d(np.asarray(self.means, dtype=float))
        if mu.ndim != 2 or not np.all(np.isfinite(mu)):
            raise ValueError("means: need a finite (K, d) array")
        k, d = mu.shape
        if w.size != k:
            raise ValueError(f"weights: {w.size} weights for {k} means")
        c = np.asarray(self.covariances, dtype=float)
        if c.ndim == 1 or c.ndim == 0:  # isotropic variances
            if c.size not in (1, k):
                raise ValueError(f"covariances: {c.size} isotropic variances for {k} components")
            c = np.broadcast_to(c.reshape(-1), (k,))[:, None] * np.ones((k, d))
        if c.ndim == 2:  # diagonals
            if c.shape != (k, d):
                raise ValueError(f"covariances: diagonal covariances need shape {(k, d)}, got {c.shape}")
            lam, vec = c.copy(), np.broadcast_to(np.eye(d), (k, d, d)).copy()
            diagonal = True
        elif c.shape == (k, d, d):
            if not np.allclose(c, np.swapaxes(c, 1, 2), atol=1e-12):
                raise ValueError("covariances must be symmetric")
            lam, vec = np.linalg.eigh(c)
            diagonal = False
        else:
            raise ValueError(f"covariances: shape {c.shape} does not fit {k} components in {d} dimensions")
        if not np.all(np.isfinite(lam)) or np.any(lam <= 0):
            raise ValueError("covariances must be positive definite (every std / variance > 0)")
        object.__setattr__(self, "weights", w / w.sum())
        object.__setattr__(self, "means", mu)
        object.__setattr__(self, "covariances", c)
        object.__setattr__(self, "eigenvalues", lam)
        object.__setattr__(self, "eigenvectors", vec)
        object.__setattr__(self, "diagonal", diagonal)
        if self.labels is not None:
            object.__setattr__(self, "labels", np.asarray(self.labels, dtype=int).reshape(-1))

    # ------------------------------------------------------------------ basics
    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def components(self) -> int:
        return self.means.shape[0]

    def mean(self) -> np.ndarray:
        return self.weights @ self.means

    def bound(self, stds: float = 3.0) -> float:
        """The data's range per coordinate: the largest ``|mu_kj| + stds * sqrt(C_k,jj)`` (a box that
        holds all but a sliver of every component; what thresholding treats as the data's scale)."""
        lam, u = self.eigenvalues, self.eigenvectors
        variances = np.einsum("kji,ki->kj", u * u, lam)  # the diagonals of the covariances
        return float(np.max(np.abs(self.means) + stds * np.sqrt(variances)))

    def fingerprint(self) -> str:
        """A digest of the parameters (a cache key for statistics computed from this model)."""
        if "fingerprint" not in self._cache:
            h = hashlib.sha1()
            for a in (self.weights, self.means, self.covariances):
                h.update(np.ascontiguousarray(a).tobytes())
            self._cache["fingerprint"] = h.hexdigest()
        return self._cache["fingerprint"]

    def covariance(self) -> np.ndarray:
        """Total covariance of the data distribution."""
        lam, u = self.eigenvalues, self.eigenvectors
        within = np.einsum("k,kij,kj,klj->il", self.weights, u, lam, u)
        dm = self.means - self.mean()
        return within + np.einsum("k,ki,kj->ij", self.weights, dm, dm)

    def _arrays(self, xp):
        key = id(xp)
        if key not in self._cache:
            self._cache[key] = dict(
                logw=xp.asarray(np.log(np.maximum(self.weights, 1e-300))),
                mu=xp.asarray(self.means),
                lam=xp.asarray(self.eigenvalues),
                u=xp.asarray(self.eigenvectors),
            )
        return self._cache[key]

    # ------------------------------------------------------------------ the exact model
    def _terms(self, x, alpha: float, sigma: float):
        xp = array_api_compat.array_namespace(x)
        if x.ndim != 2 or x.shape[-1] != self.dim:
            raise ValueError(f"x: the model of {self.name} takes points of shape (n, {self.dim}), got {tuple(x.shape)}")
        p = self._arrays(xp)
        alpha, sigma = float(alpha), float(sigma)
        var = alpha * alpha * p["lam"] + sigma * sigma  # (K, d)
        diff = x[None, ...] - alpha * p["mu"][:, None, :]  # (K, n, d)
        z = diff if self.diagonal else _per_component(xp, diff, p["u"], transpose=False)  # eigen-coordinates
        zv = z / var[:, None, :]
        logp = (p["logw"][:, None] - 0.5 * xp.sum(z * zv, axis=-1)
                - 0.5 * xp.sum(xp.log(2 * math.pi * var), axis=-1)[:, None])  # (K, n)
        return xp, p, zv, logp

    def _in_chunks(self, fn, x, *args):
        """``fn(x, *args)`` for points ``x`` of shape ``(n, d)``, in chunks of points where the ``(K, n, d)``
        temporaries of one evaluation would hold more than :data:`CHUNK_ELEMENTS` elements each (the
        points are independent: the same numbers, with a bounded memory)."""
        rows = max(1, CHUNK_ELEMENTS // (self.components * self.dim))
        n = x.shape[0]
        if n <= rows:
            return fn(x, *args)
        xp = array_api_compat.array_namespace(x)
        outs = single = None
        for i in range(0, n, rows):  # (written into the results as they come: no list of parts to join)
            part = fn(x[i:i + rows, ...], *args)
            if outs is None:
                single = not isinstance(part, tuple)
                outs = tuple(xp.empty((n, *p.shape[1:]), dtype=p.dtype, device=array_api_compat.device(x))
                             for p in ((part,) if single else part))
            for out, p in zip(outs, (part,) if single else part):
                out[i:i + rows, ...] = p
        return outs[0] if single else outs

    def predict(self, x, alpha: float, sigma: float):
        """Exact ``(eps_hat, x0_hat)`` at ``x`` (shape ``(n, d)``) for ``x_t = alpha x0 + sigma eps``."""
        return self._in_chunks(self._predict, x, alpha, sigma)

    def _predict(self, x, alpha: float, sigma: float):
        xp, p, zv, logp = self._terms(x, alpha, sigma)
        r = xp.exp(logp - xp.max(logp, axis=0, keepdims=True))
        r = r / xp.sum(r, axis=0, keepdims=True)  # responsibilities (K, n)
        ez = sigma * zv
        xz = float(alpha) * p["lam"][:, None, :] * zv
        if not self.diagonal:
            ez = _per_component(xp, ez, p["u"], transpose=True)
            xz = _per_component(xp, xz, p["u"], transpose=True)
        eps = xp.sum(r[..., None] * ez, axis=0)
        x0 = xp.sum(r[..., None] * (p["mu"][:, None, :] + xz), axis=0)
        return eps, x0

    def __call__(self, x, alpha: float, sigma: float):
        return self.predict(x, alpha, sigma)

    def log_prob(self, x, alpha: float = 1.0, sigma: float = 0.0):
        """Log-density of the noised marginal :math:`p_t` at ``x`` (shape ``(n, d)``)."""
        return self._in_chunks(self._log_prob, x, alpha, sigma)

    def _log_prob(self, x, alpha: float, sigma: float):
        xp, _, _, logp = self._terms(x, alpha, sigma)
        m = xp.max(logp, axis=0)
        return m + xp.log(xp.sum(xp.exp(logp - m[None, :]), axis=0))

    def score(self, x, alpha: float, sigma: float):
        """:math:`\\nabla_x \\log p_t(x) = -\\hat\\varepsilon / \\sigma` (computed without dividing by sigma)."""
        return self._in_chunks(self._score, x, alpha, sigma)

    def _score(self, x, alpha: float, sigma: float):
        xp, p, zv, logp = self._terms(x, alpha, sigma)
        r = xp.exp(logp - xp.max(logp, axis=0, keepdims=True))
        r = r / xp.sum(r, axis=0, keepdims=True)
        g = zv if self.diagonal else _per_component(xp, zv, p["u"], transpose=True)
        return -xp.sum(r[..., None] * g, axis=0)

    def velocity(self, x, alpha: float, sigma: float, d_alpha: float, d_sigma: float):
        """Probability-flow velocity :math:`dx/dt = \\alpha'\\hat x_0 + \\sigma'\\hat\\varepsilon`."""
        eps, x0 = self.predict(x, alpha, sigma)
        return d_alpha * x0 + d_sigma * eps

    def v_prediction(self, x, alpha: float, sigma: float):
        """The "v" target of v-prediction models, :math:`\\alpha\\hat\\varepsilon - \\sigma\\hat x_0`."""
        eps, x0 = self.predict(x, alpha, sigma)
        return alpha * eps - sigma * x0

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, rng: np.random.Generator, alpha: float = 1.0, sigma: float = 0.0) -> np.ndarray:
        """``n`` exact host samples of the noised marginal (the data for ``alpha=1, sigma=0``)."""
        k = rng.choice(self.components, size=n, p=self.weights)
        z = rng.standard_normal((n, self.dim)) * np.sqrt(self.eigenvalues[k])
        x0 = np.empty((n, self.dim))
        for c in range(self.components):  # one matrix product per component (BLAS)
            sel = k == c
            x0[sel] = self.means[c] + z[sel] @ self.eigenvectors[c].T
        return alpha * x0 + sigma * rng.standard_normal((n, self.dim))

    def conditional(self, label: int) -> GaussianMixture:
        """The mixture restricted to the components of class ``label``."""
        if self.labels is None:
            raise ValueError("this target has no class labels")
        keep = self.labels == label
        if not np.any(keep):
            raise ValueError(f"no component has class label {label}; labels: {sorted(set(self.labels))}")
        return GaussianMixture(self.weights[keep], self.means[keep], self.covariances[keep],
                               self.labels[keep], name=f"{self.name}|{label}")


def _per_component(xp, a, u, transpose: bool):
    """``a[k] @ u[k]`` (or ``@ u[k].T``) for every component k, as 2-D products (fast BLAS)."""
    mats = [u[k, ...] for k in range(u.shape[0])]
    if transpose:
        mats = [xp.permute_dims(m, (1, 0)) for m in mats]
    return xp.stack([xp.matmul(a[k, ...], mats[k]) for k in range(len(mats))])


def guided_model(uncond: GaussianMixture, cond: GaussianMixture, scale: float):
    """Classifier-free guidance :math:`\\hat\\varepsilon_u + s(\\hat\\varepsilon_c - \\hat\\varepsilon_u)`
    (and the same combination of the data predictions, which keeps ``x = alpha x0 + sigma eps``).

    The returned function carries ``data`` (the conditional mixture, whose noised samples estimate
    model statistics) and ``fingerprint`` (a cache key)."""

    def model(x, alpha, sigma):
        eu, xu = uncond.predict(x, alpha, sigma)
        if scale == 1.0:
            return cond.predict(x, alpha, sigma)
        ec, xc = cond.predict(x, alpha, sigma)
        return eu + scale * (ec - eu), xu + scale * (xc - xu)

    model.data = cond
    model.fingerprint = ("guided", uncond.fingerprint(), cond.fingerprint(), float(scale))
    return model


# ---------------------------------------------------------------------- the catalogue
def ring(n: int = 8, radius: float = 4.0, std: float = 0.5, labels: bool = False) -> GaussianMixture:
    ang = 2 * np.pi * np.arange(n) / n
    means = radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    return GaussianMixture(np.ones(n), means, np.full(n, std**2), np.arange(n) if labels else None,
                           name="ring_conditional" if labels else f"ring{n}")


def bimodal_1d(separation: float = 4.0, std: float = 0.5, weight: float = 0.3) -> GaussianMixture:
    return GaussianMixture([weight, 1 - weight], [[-separation / 2], [separation / 2]], [std**2, std**2],
                           name="bimodal_1d")


def narrow_modes(std: float = 0.02) -> GaussianMixture:
    """A broad mode and two very narrow ones: stiff near the end of sampling."""
    return GaussianMixture([0.5, 0.25, 0.25], [[0.0, 0.0], [2.0, 1.0], [-1.5, 2.0]],
                           [1.0, std**2, std**2], name="narrow_modes")


def grid(n: int = 5, spacing: float = 2.0, std: float = 0.2) -> GaussianMixture:
    g = spacing * (np.arange(n) - (n - 1) / 2)
    means = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    return GaussianMixture(np.ones(n * n), means, np.full(n * n, std**2), name=f"grid{n}x{n}")


def gaussian(dim: int = 2, std: float = 1.0, mean: float = 0.0) -> GaussianMixture:
    """A single Gaussian (every sampler's output is then Gaussian, in closed form)."""
    return GaussianMixture([1.0], [np.full(dim, mean)], [std**2], name="gaussian")


@functools.lru_cache(maxsize=4)
def random_image(size: int = 16, exponent: float = 2.0, k0: float = 1.0) -> GaussianMixture:
    """A stationary Gaussian random field on a periodic ``size x size`` grid with power spectrum
    :math:`P(k) \\propto (k_0^2 + |k|^2)^{-\\text{exponent}/2}`, unit pixel variance."""
    k = np.fft.fftfreq(size) * size
    kk = k[:, None] ** 2 + k[None, :] ** 2
    power = (k0**2 + kk) ** (-exponent / 2)
    power = power / power.mean()  # unit pixel variance
    corr = np.real(np.fft.ifft2(power))  # stationary correlation c(r)
    idx = np.arange(size)
    dy = (idx[:, None, None, None] - idx[None, None, :, None]) % size
    dx = (idx[None, :, None, None] - idx[None, None, None, :]) % size
    cov = corr[dy, dx].reshape(size * size, size * size)
    cov = 0.5 * (cov + cov.T)
    return GaussianMixture([1.0], [np.zeros(size * size)], cov[None], name=f"image{size}")


TARGETS = {
    "ring8": lambda: ring(8),
    "bimodal_1d": bimodal_1d,
    "narrow_modes": narrow_modes,
    "grid25": grid,
    "ring_conditional": lambda: ring(8, labels=True),
    "gaussian": gaussian,
    "image16": random_image,
}


def make_target(name: str) -> GaussianMixture:
    """A target of the catalogue :data:`TARGETS` by name."""
    try:
        return TARGETS[name]()
    except KeyError:
        raise ValueError(f"target: unknown target {name!r}; known: {', '.join(TARGETS)}") from None
