"""Erlang C and Erlang A: the queueing formulas behind pressure, staffing advice and the simulator.

Erlang C (M/M/N): Poisson arrivals at `rate_per_s`, exponential handling with mean `aht_s`,
`agents` identical servers, callers who wait as long as it takes. Offered load in Erlangs is
A = rate x AHT. With N > A agents:

- P(wait) = C(N, A), computed through the Erlang B recursion (stable for thousands of agents);
- ASA (mean wait of all callers) = C x AHT / (N - A);
- service level within t seconds = 1 - C x exp(-(N - A) x t / AHT).

With N <= A the queue grows without bound: P(wait) = 1, ASA and waits are infinite, service
level 0.

Erlang A (M/M/N+M) adds impatience: each waiting caller hangs up after an exponential patience
with mean `patience_s` (rates: lambda = rate, mu = 1 / AHT, theta = 1 / patience). The number of
callers in the system is a birth-death chain (births lambda, deaths min(n, N) mu +
max(0, n - N) theta); abandonment keeps it stable for every N >= 1, so N may be below A. By
PASTA an arrival sees its stationary distribution pi. One who finds n < N is answered at once;
one who finds k = n - N callers queued ahead is answered after S_k = sum over j = 0..k of
Exp(N mu + j theta) (those ahead leave by service or by hanging up) if its own patience outlasts
S_k, so P(answered within t | k) = E[exp(-theta S_k); S_k <= t]. Since S_k has the law of
-ln(U) / theta with U ~ Beta(N mu / theta, k + 1), these sum over the stationary tail in closed
form. With h(s) = exp(-N mu s + lambda (1 - exp(-theta s)) / theta):

- sum over n < N of pi_n / pi_N = 1/B(N, A) - 1 = N x integral_0^inf exp(-A s) (1 + s)^(N-1) ds;
- sum over k >= 0 of pi_(N+k) / pi_N = N mu x integral_0^inf h(s) ds;
- callers answered after waiting at most t, per pi_N: N mu x integral_0^t exp(-theta s) h(s) ds;
- their total wait, per pi_N: N mu x integral_0^inf s exp(-theta s) h(s) ds.

Service level within t is then (idle + answered within t) / (idle + queued): the share of ALL
arrivals answered within t, a caller who hangs up counting as not answered whatever its wait.
P(abandon) = 1 - service level within infinity (= theta x E[queue length] / lambda); ASA with
abandonment is the mean wait of the answered callers. As theta -> 0, h(s) ->
exp(-(N mu - lambda) s) and all of it reduces to the Erlang C formulas above (for N > A).

Every integrand is log-concave, so each integral is taken in log space (no overflow for
thousands of agents or a queue of thousands) by Gauss-Legendre, on panels widening away from
its peak, over the window where it is within exp(-40) of that peak: the cost hardly grows with
N or the queue (a fraction of a millisecond), and service level being non-decreasing in N,
staffing is a bracketing search from N = A. Conventions: no calls means service level 1,
nothing abandoned, ASA 0; no agents means service level 0, everyone abandons, ASA infinite.
Patience is clamped to [1e-9, 1e12] handling times (the Erlang B and Erlang C limits, to
rounding); for Erlang C itself, leave `patience_s` out of `agents_for_service_level`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Load:
    """Calls arriving at `rate_per_s`, each handled in `aht_s` on average."""

    rate_per_s: float
    aht_s: float

    def __post_init__(self) -> None:
        if self.rate_per_s < 0 or self.aht_s <= 0:
            raise ValueError("a load needs a rate >= 0 and a handling time > 0")

    @property
    def erlangs(self) -> float:
        """Offered load A: how many agents the calls would keep busy without any waiting."""
        return self.rate_per_s * self.aht_s


def erlang_b(agents: int, erlangs: float) -> float:
    """Blocking probability of N servers with no queue (the recursion Erlang C is built on)."""
    if agents < 0 or erlangs < 0:
        raise ValueError("agents and load must not be negative")
    blocking = 1.0
    for n in range(1, agents + 1):
        blocking = erlangs * blocking / (n + erlangs * blocking)
    return blocking


def wait_probability(agents: int, load: Load) -> float:
    """C(N, A): the chance an arriving caller has to wait."""
    a = load.erlangs
    if a == 0:
        return 0.0
    if agents <= a:
        return 1.0
    b = erlang_b(agents, a)
    return agents * b / (agents - a * (1 - b))


def asa_s(agents: int, load: Load) -> float:
    """Average speed of answer over all callers, in seconds (infinite if understaffed)."""
    a = load.erlangs
    if a == 0:
        return 0.0
    if agents <= a:
        return math.inf
    return wait_probability(agents, load) * load.aht_s / (agents - a)


def service_level(agents: int, load: Load, within_s: float) -> float:
    """The share of callers answered within `within_s` seconds."""
    a = load.erlangs
    if a == 0:
        return 1.0
    if agents <= a:
        return 0.0
    return 1 - wait_probability(agents, load) * math.exp(-(agents - a) * within_s / load.aht_s)


def agents_for_service_level(
    load: Load,
    *,
    target: float,
    within_s: float,
    patience_s: float | None = None,
    limit: int = 100_000,
) -> int:
    """The fewest agents that answer `target` of callers within `within_s` seconds.

    Without `patience_s` this is Erlang C (callers never hang up). With it, Erlang A: the fewest
    N >= 1 whose `service_level_with_abandonment` reaches the target, which may be below the
    offered load.
    """
    if not 0 < target < 1:
        raise ValueError("a service-level target is a share strictly between 0 and 1")
    if patience_s is not None:
        return _agents_with_abandonment(load, target, within_s, patience_s, limit)
    agents = max(1, math.floor(load.erlangs) + 1)
    while service_level(agents, load, within_s) < target:
        agents += 1
        if agents > limit:
            raise ValueError(f"more than {limit} agents would be needed")
    return agents


def abandon_probability(agents: int, load: Load, patience_s: float) -> float:
    """Erlang A: the share of arriving callers who hang up before an agent answers."""
    model = _ErlangA.of(agents, load, patience_s)
    if model is None:
        return 0.0 if load.rate_per_s == 0 else 1.0
    return min(1.0, max(0.0, 1 - model.answered_within(math.inf)))


def service_level_with_abandonment(
    agents: int, load: Load, within_s: float, patience_s: float
) -> float:
    """Erlang A: the share of ALL arriving callers answered within `within_s` seconds.

    Callers answered on arrival count as answered; a caller who hangs up counts as not
    answered, however long it waited. So it never exceeds 1 - `abandon_probability`. With no
    agents nobody is answered (0); with no calls it is 1.
    """
    if within_s < 0:
        raise ValueError("a service-level threshold must not be negative")
    model = _ErlangA.of(agents, load, patience_s)
    if model is None:
        return 1.0 if load.rate_per_s == 0 else 0.0
    return min(1.0, max(0.0, model.answered_within(within_s)))


def asa_with_abandonment(agents: int, load: Load, patience_s: float) -> float:
    """Erlang A: the mean wait in seconds of the callers who are answered (0 if answered at once).

    Infinite with no agents, when nobody is answered.
    """
    model = _ErlangA.of(agents, load, patience_s)
    if model is None:
        return 0.0 if load.rate_per_s == 0 else math.inf
    return model.mean_answered_wait()


# Erlang A internals: see the module docstring for the formulas.

_Floats = npt.NDArray[np.float64]
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(16)
_DROP = 40.0  # the part of an integrand below exp(-40) of its peak is left out
_PATIENCE_AHTS = (1e-9, 1e12)  # patience is clamped to this many handling times


class _LogConcave(Protocol):
    """exp(psi(s)) on s >= 0 with psi concave, evaluated as offsets d from the peak at `mode`."""

    @property
    def mode(self) -> float: ...

    @property
    def peak(self) -> float:
        """psi(mode)."""
        ...

    def offset(self, d: float) -> float:
        """psi(mode + d) - psi(mode)."""
        ...

    def offsets(self, d: _Floats) -> _Floats: ...

    def slope(self, d: float) -> float:
        """psi'(mode + d)."""
        ...

    def curvature(self) -> float:
        """psi''(mode), negative."""
        ...

    def width(self) -> float:
        """A length over which the shape of psi near its peak changes little."""
        ...


@dataclass(frozen=True, slots=True)
class _IdleExponent:
    """psi(s) = -A s + n ln(1 + s): integral_0^inf exp(psi) = (1/B(n + 1, A) - 1) / (n + 1)."""

    n: int
    erlangs: float

    @property
    def _scale(self) -> float:  # 1 + mode
        return max(1.0, self.n / self.erlangs)

    @property
    def mode(self) -> float:
        return self._scale - 1

    @property
    def peak(self) -> float:
        return -self.erlangs * self.mode + self.n * math.log(self._scale)

    def offset(self, d: float) -> float:
        return -self.erlangs * d + self.n * math.log1p(d / self._scale)

    def offsets(self, d: _Floats) -> _Floats:
        values: _Floats = -self.erlangs * d + self.n * np.log1p(d / self._scale)
        return values

    def slope(self, d: float) -> float:
        return -self.erlangs + self.n / (self._scale + d)

    def curvature(self) -> float:
        return -self.n / self._scale**2

    def width(self) -> float:
        return self._scale / math.sqrt(self.n + 1)


@dataclass(frozen=True, slots=True)
class _QueueExponent:
    """psi(s) = -c s + lambda (1 - exp(-theta s)) / theta (c = N mu: h; c = N mu + theta: waits)."""

    c: float
    rate: float
    theta: float

    @property
    def _pull(self) -> float:  # lambda exp(-theta mode)
        return min(self.rate, self.c)

    @property
    def mode(self) -> float:
        return math.log(self.rate / self.c) / self.theta if self.rate > self.c else 0.0

    @property
    def peak(self) -> float:
        return -self.c * self.mode + (self.rate - self._pull) / self.theta

    def offset(self, d: float) -> float:
        return -self.c * d - self._pull * math.expm1(-self.theta * d) / self.theta

    def offsets(self, d: _Floats) -> _Floats:
        return -self.c * d - self._pull * np.expm1(-self.theta * d) / self.theta

    def slope(self, d: float) -> float:
        return -self.c + self._pull * math.exp(-self.theta * d)

    def curvature(self) -> float:
        return -self._pull * self.theta

    def width(self) -> float:  # exp(-theta s) turns over within 1 / theta
        return min(1 / math.sqrt(self._pull * self.theta), 1 / self.theta)


def _edge(f: _LogConcave, start: float, floor: float) -> float:
    """Where psi falls _DROP below its peak, by Newton from `start` on one side of the peak.

    psi is concave, so after the first step the iterates stay outside the root and close in on
    it: the edge returned never cuts into the window.
    """
    d = start
    for _ in range(100):
        slope = f.slope(d)
        if slope == 0:  # only if rounding flattens psi; cannot happen for clamped patience
            return d
        step = (f.offset(d) + _DROP) / slope
        following = max(floor, d - step)
        if abs(following - d) <= 1e-9 * abs(following):
            return following
        d = following
    return d


def _window(f: _LogConcave) -> tuple[float, float]:
    """The offsets (from the peak) between which exp(psi) is within exp(-_DROP) of its peak."""
    spread = math.sqrt(2 * _DROP / -f.curvature())
    slope = f.slope(0.0)
    right = _edge(f, spread if slope >= 0 else min(spread, _DROP / -slope), 0.0)
    if f.mode == 0 or f.offset(-f.mode) >= -_DROP:
        return -f.mode, right
    return _edge(f, max(-f.mode, -spread), -f.mode), right


def _graded(length: float, width: float) -> list[float]:
    """Panel edges from 0 to `length`, the first `width` wide and each next one twice as wide."""
    edges, step = [0.0], width
    while edges[-1] + step < length:
        edges.append(edges[-1] + step)
        step *= 2
    return [*edges, length] if length > 0 else edges


def _log_mass(f: _LogConcave, upper: float = math.inf, *, times_s: bool = False) -> float:
    """ln of integral_0^upper exp(psi(s) - psi(mode)) ds (of s exp(...) ds with `times_s`).

    The panels grow geometrically away from the peak, the first as wide as psi's shape there
    allows (1 / theta when callers are impatient, 1 / |psi'| at a peak on the boundary), so
    that short features near the peak and a slow decay far from it are both resolved.
    """
    low, high = _window(f)
    cut = min(high, upper - f.mode)
    if cut <= low:
        return -math.inf
    slope = abs(f.slope(0.0))  # nonzero when the peak is at s = 0: then psi falls from the start
    width = min(f.width(), 1 / slope) if slope > 0 else f.width()
    edges = np.array([-e for e in reversed(_graded(-low, width)[1:])] + _graded(high, width))
    edges = np.append(edges[edges < cut], cut)
    centres, halves = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    d = centres[:, None] + halves[:, None] * _NODES
    terms = np.exp(f.offsets(d)) * (halves[:, None] * _WEIGHTS)
    if times_s:
        terms *= f.mode + d
    total = float(terms.sum())
    return math.log(total) if total > 0 else -math.inf


@dataclass(frozen=True, slots=True)
class _ErlangA:
    """The stationary M/M/N+M system, in the module docstring's terms scaled by pi_N.

    Logs are kept relative to the peak of N mu h(s), which is astronomically large when patience
    is very long and N < A: adding small terms to it would round them away.
    """

    # All three are ln(...) - ln(N mu max h).
    log_idle: float  # the sum of pi_n / pi_N over n < N
    log_queued: float  # the sum of pi_(N+k) / pi_N over k >= 0
    log_scale: float  # N mu max(exp(-theta s) h(s))
    waiting: _QueueExponent  # exp(-theta s) h(s)

    @classmethod
    def of(cls, agents: int, load: Load, patience_s: float) -> _ErlangA | None:
        """The system, or None when there are no agents or no calls."""
        if agents < 0:
            raise ValueError("agents must not be negative")
        if not 0 < patience_s < math.inf:
            raise ValueError("patience must be positive and finite")
        if agents == 0 or load.rate_per_s == 0:
            return None
        erlangs, rate = load.erlangs, load.rate_per_s
        shortest, longest = (ahts * load.aht_s for ahts in _PATIENCE_AHTS)
        service, theta = agents / load.aht_s, 1 / min(max(patience_s, shortest), longest)
        queue = _QueueExponent(service, rate, theta)
        waiting = _QueueExponent(service + theta, rate, theta)
        if rate > service + theta:  # both peaks large: take their gap without cancellation
            gap = service / theta * math.log1p(theta / service) - math.log(rate / waiting.c) - 1
        else:
            gap = waiting.peak - queue.peak
        scale = math.log(service) + queue.peak
        if agents == 1:
            log_idle = -math.log(erlangs) - scale
        else:
            idle = _IdleExponent(agents - 1, erlangs)
            log_idle = (math.log(agents) - scale) + idle.peak + _log_mass(idle)
        return cls(log_idle=log_idle, log_queued=_log_mass(queue), log_scale=gap, waiting=waiting)

    @property
    def _everyone(self) -> tuple[float, float]:
        """The ln-scale `top` and (idle + queued) / exp(top): the normaliser, without overflow."""
        top = max(self.log_idle, self.log_queued)
        return top, math.exp(self.log_idle - top) + math.exp(self.log_queued - top)

    def answered_within(self, within_s: float) -> float:
        top, everyone = self._everyone
        log_waited = self.log_scale + _log_mass(self.waiting, within_s)
        return (math.exp(self.log_idle - top) + math.exp(log_waited - top)) / everyone

    def mean_answered_wait(self) -> float:
        top, everyone = self._everyone
        log_waits = self.log_scale + _log_mass(self.waiting, times_s=True)
        answered = self.answered_within(math.inf)
        return math.exp(log_waits - top) / everyone / answered if answered > 0 else math.inf


def _agents_with_abandonment(
    load: Load, target: float, within_s: float, patience_s: float, limit: int
) -> int:
    """Erlang A staffing: bracket the answer by galloping from N = A, then bisect.

    Service level is non-decreasing in N, and the answer is usually within a few sqrt(A) of A.
    """

    def meets(agents: int) -> bool:
        return service_level_with_abandonment(agents, load, within_s, patience_s) >= target

    step = max(1, math.isqrt(math.ceil(load.erlangs)))
    good = bad = max(1, min(limit, round(load.erlangs)))
    if meets(good):
        while bad > 0:  # 0 agents answer nobody
            bad = max(0, good - step)
            if bad == 0 or not meets(bad):
                break
            good, step = bad, 2 * step
    else:
        while True:
            if bad >= limit:
                raise ValueError(f"more than {limit} agents would be needed")
            good = min(limit, bad + step)
            if meets(good):
                break
            bad, step = good, 2 * step
    while good - bad > 1:
        middle = (good + bad) // 2
        if meets(middle):
            good = middle
        else:
            bad = middle
    return good
