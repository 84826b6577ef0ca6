"""Which x86-64 level a binary's machine code needs, read from ``objdump -d``.

Levels are those of the x86-64 psABI: 1 (baseline SSE2), 2 (SSE4.2, POPCNT), 3 (AVX, AVX2,
FMA, BMI1/2, F16C, LZCNT, MOVBE), 4 (AVX-512). Code a library runs only after checking the
CPU (pgvector's ``*Avx512*``/``*F16c`` kernels, PostgreSQL's ``*_avx512`` and ``*_choose``)
is reported apart: it is safe on any CPU as long as the check guards it.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# EVEX-only operands: zmm registers, opmask registers, the upper 16 xmm/ymm, zeroing, broadcast.
_AVX512_OPERAND = re.compile(r"%zmm|%k[1-7]\b|%[xy]mm(1[6-9]|2\d|3[01])\b|\{z\}|\{1to")
_MASK_OPS = ("kmov", "kand", "kor", "kxor", "knot", "ktest", "kshift", "kunpck", "kadd")
_V3_SCALAR = frozenset(
    "andn bextr blsi blsmsk blsr bzhi mulx pdep pext rorx sarx shlx shrx lzcnt movbe".split()  # noqa: SIM905
)
_V2 = frozenset(
    "popcnt crc32 crc32b crc32w crc32l crc32q pshufb palignr ptest pblendvb blendvps blendvpd "  # noqa: SIM905
    "pminsd pmaxsd pminud pmaxud pmulld pcmpeqq pcmpgtq pextrb pextrd pextrq pinsrb pinsrd "
    "pinsrq roundss roundsd roundps roundpd dpps dppd pcmpestri pcmpistri pabsb pabsw pabsd "
    "phaddd pmaddubsw pmulhrsw insertps extractps packusdw pmovzxbw pmovzxwd pmovsxbw "
    "pmovsxwd pmovzxbd pmovzxdq pmovsxdq lddqu movddup movshdup movsldup haddps haddpd".split()
)
_PREFIXES = frozenset({"rep", "repz", "repnz", "repe", "repne", "lock", "data16", "cs", "ds"})
# Names of functions that run only behind a CPUID check, or that make the check.
DISPATCHED = re.compile(r"avx|f16c|fma|popcnt|sse4|_choose|_available|cpuid", re.IGNORECASE)
_FUNCTION = re.compile(r"^[0-9a-f]+ <(.+)>:$")
_INSTRUCTION = re.compile(r"^\s+[0-9a-f]+:\s+(\S+)\s*(.*)$")


def instruction_level(mnemonic: str, operands: str) -> int:
    """The x86-64 level one instruction needs (tzcnt counts as baseline: see below)."""
    if _AVX512_OPERAND.search(operands) or mnemonic.startswith(_MASK_OPS):
        return 4
    # Compilers emit TZCNT for generic x86-64 on purpose: older CPUs run it as BSF.
    if mnemonic.startswith("v") or mnemonic in _V3_SCALAR:
        return 3
    return 2 if mnemonic in _V2 else 1


@dataclass
class Audit:
    """Per function, the highest level its instructions need."""

    path: Path
    levels: dict[str, int] = field(default_factory=dict)

    def undispatched(self, at_least: int) -> list[str]:
        """Functions outside runtime dispatch that need ``at_least`` this level."""
        return sorted(
            fn for fn, lv in self.levels.items() if lv >= at_least and not DISPATCHED.search(fn)
        )

    @property
    def level(self) -> int:
        """The level a CPU must have to run every function outside runtime dispatch."""
        return max((lv for fn, lv in self.levels.items() if not DISPATCHED.search(fn)), default=1)


def audit(path: Path) -> Audit:
    """Disassemble ``path`` and record each function's level."""
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = Audit(path)
    function = "?"
    for line in listing.splitlines():
        head = _FUNCTION.match(line)
        if head:
            function = head.group(1)
            continue
        body = _INSTRUCTION.match(line)
        if not body:
            continue
        mnemonic, operands = body.group(1), body.group(2)
        while mnemonic in _PREFIXES and operands:
            mnemonic, _, operands = operands.partition(" ")
        level = instruction_level(mnemonic, operands)
        result.levels[function] = max(result.levels.get(function, 1), level)
    return result
