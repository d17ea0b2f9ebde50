"""Failed-login throttling per account and per client address, kept in this process.

A key (an account, an address) is locked once it has ``limit`` failures inside the last ``window_s``
seconds, until the oldest of them leaves the window. Only failures count: people who type their password
right are never slowed down, and the account counter is cleared by a successful log-in.

Each gunicorn worker keeps its own counters, so the effective limit is the configured one times the
number of workers: still a handful of guesses per window instead of thousands.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

DEFAULT_MAX_KEYS = 10_000
# Every key is a short fixed-size string, so the table's memory is bounded by DEFAULT_MAX_KEYS alone,
# whatever usernames and addresses an attacker sends.
MAX_ADDRESS_KEY_LEN = 64


def account_key(account: str) -> str:
    """The throttling key of a username: case-insensitive, and a fixed-size digest instead of the name."""
    return hashlib.sha256(account.casefold().encode("utf-8", "surrogatepass")).hexdigest()[:32]


def address_key(address: str | None) -> str:
    """The throttling key of a client address: an IPv6 client owns a whole /64, so it counts as one."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:MAX_ADDRESS_KEY_LEN]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class LoginThrottle:
    def __init__(
        self,
        *,
        max_per_account: int,
        max_per_address: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if max_per_account < 1 or max_per_address < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("login throttle limits and window must be positive")
        self.max_per_account = max_per_account
        self.max_per_address = max_per_address
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        # Least recently failed first, so pruning only ever looks at the front.
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _limits(self, account: str, address: str | None) -> list[tuple[tuple[str, str], int]]:
        # casefold: "Ana" and "ana" share a counter, so case variants buy no extra guesses
        return [
            (("account", account_key(account)), self.max_per_account),
            (("address", address_key(address)), self.max_per_address),
        ]

    def retry_after(self, account: str, address: str | None) -> int:
        """Whole seconds until ``account`` may try again from ``address``; 0 means now."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key, limit in self._limits(account, address):
                times = self._failures.get(key)
                if times is not None and len(times) >= limit:
                    wait = max(wait, times[-limit] + self.window_s - now)
        return math.ceil(wait) if wait > 0 else 0

    def failure(self, account: str, address: str | None) -> None:
        now = self.clock()
        with self._lock:
            for key, limit in self._limits(account, address):
                times = self._failures.get(key)
                if times is None:
                    times = self._failures[key] = deque(maxlen=limit)
                else:
                    self._failures.move_to_end(key)
                times.append(now)
            self._prune(now)

    def success(self, account: str) -> None:
        with self._lock:
            self._failures.pop(("account", account_key(account)), None)

    def __len__(self) -> int:
        return len(self._failures)

    def _prune(self, now: float) -> None:
        while self._failures:
            times = next(iter(self._failures.values()))
            if times[-1] + self.window_s > now:
                break
            self._failures.popitem(last=False)
        # Attackers choose usernames and addresses, so the table needs a hard bound; past it the least
        # recently failing keys go first (the per-address limit makes a flood of usernames expensive).
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)
