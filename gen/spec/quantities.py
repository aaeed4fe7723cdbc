"""Quantities and names of container options, as Docker and Compose read them: sizes ("512m"),
CPUs (nano-CPUs), signals and Linux capabilities. Exact integer arithmetic throughout: a size or a
CPU count never passes through a float, so the same text always gives the same number."""
from __future__ import annotations

import re
from fractions import Fraction

from gen.errors import SpecError
from gen.spec.messages import clip, is_huge_int, shown

MAX_INT64 = 2 ** 63 - 1
NANO = 10 ** 9

# ---------------------------------------------------------------- sizes

# go-units' RAMInBytes, which Compose and the Docker CLI use: a decimal number, one optional space, then
# b, or k/m/g/t/p optionally followed by b or ib, case-insensitive; binary multiples; the bytes truncated.
_SIZE = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]{1,3})? ?(b|[kmgtp](?:i?b)?)?", re.IGNORECASE)
_MULTIPLE = {"": 1, "b": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40, "p": 2 ** 50}
_SIZE_HINT = 'bytes, or a size like "512m" (b, k, m, g, t, p; binary multiples)'


def parse_size(value, path: str, minus_one: bool = False) -> int:
    """A size in bytes: an integer, or text like "512m", "1.5g", "1024k", "1GiB". minus_one: -1 is
    allowed (memswap_limit: unlimited swap)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise SpecError(path, f"must be {_SIZE_HINT}")
    if isinstance(value, int):
        if value == -1 and minus_one:
            return -1
        if value < 0:
            raise SpecError(path, "must not be negative" + (" (other than -1: unlimited)" if minus_one else ""))
        return _at_most_int64(value, path)
    match = _SIZE.fullmatch(value) if len(value) <= 64 else None
    if match is None:
        raise SpecError(path, f"invalid size {shown(value)} (use {_SIZE_HINT})")
    number = Fraction(match[1] + (match[2] or ""))
    return _at_most_int64(int(number * _MULTIPLE[(match[3] or "")[:1].lower()]), path)


def _at_most_int64(number: int, path: str) -> int:
    if number > MAX_INT64:
        raise SpecError(path, "is too large")
    return number


# ---------------------------------------------------------------- CPUs

_DECIMAL = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]{1,3})?", re.IGNORECASE)


def parse_cpus(value, path: str) -> int:
    """A number of CPUs (0.5, "1.5", 2) -> nano-CPUs, exactly (as `docker run --cpus` does): a value
    finer than a nano-CPU is refused rather than rounded."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or is_huge_int(value):
        raise SpecError(path, 'must be a number of CPUs (e.g. 0.5 or "1.5")')
    # repr: the shortest text that reads back as the float (0.1 -> "0.1"); inf and nan fail the pattern
    text = repr(value) if isinstance(value, float) else str(value)
    if len(text) > 64 or not _DECIMAL.fullmatch(text):
        raise SpecError(path, f"invalid number of CPUs {shown(text)} (e.g. 0.5 or \"1.5\")")
    return _nano(Fraction(text), path, text)


def _nano(cpus: Fraction, path: str, text: str) -> int:
    if cpus < 0:
        raise SpecError(path, "must not be negative")
    nano = cpus * NANO
    if nano.denominator != 1:
        raise SpecError(path, f"{shown(text)} is too precise (at most 9 decimal places: one nano-CPU)")
    return _at_most_int64(int(nano), path)


def cpus_text(nano: int) -> str:
    """Nano-CPUs as the exact decimal text parse_cpus reads back: 1500000000 -> "1.5"."""
    whole, fraction = divmod(nano, NANO)
    return f"{whole}.{fraction:09d}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------- signals

# Linux signal names as Docker reads them (moby/sys/signal): with or without SIG, any case; or a number.
_SIGNALS = frozenset(
    "ABRT ALRM BUS CHLD CLD CONT FPE HUP ILL INT IO IOT KILL PIPE POLL PROF PWR QUIT SEGV STKFLT STOP SYS "
    "TERM TRAP TSTP TTIN TTOU URG USR1 USR2 VTALRM WINCH XCPU XFSZ RTMIN RTMAX".split()
    + [f"RTMIN+{n}" for n in range(1, 16)] + [f"RTMAX-{n}" for n in range(1, 15)])


def check_signal(text: str, path: str) -> str:
    if text.isascii() and text.isdigit() and len(text) <= 2 and 1 <= int(text) <= 64:
        return text
    if text.upper().removeprefix("SIG") not in _SIGNALS:
        raise SpecError(path, f"unknown signal {shown(text)} (e.g. SIGTERM, SIGINT, SIGQUIT, or a number 1..64)")
    return text


# ---------------------------------------------------------------- capabilities

# Every Linux capability (0..40); Docker reads them in any case, with or without CAP_, or ALL.
_CAPABILITIES = frozenset(
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT "
    "SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
    "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ "
    "PERFMON BPF CHECKPOINT_RESTORE".split())


def check_capability(text: str, path: str) -> str:
    name = text.upper()
    if name != "ALL" and name.removeprefix("CAP_") not in _CAPABILITIES:
        raise SpecError(path, f"unknown capability {shown(clip(text))} (e.g. NET_ADMIN, SYS_TIME, or ALL)")
    return text
