"""cgroup v2 device access: runc's eBPF device filter, an interpreter for it, bpf(2).

`program(rules)` emits the BPF_PROG_TYPE_CGROUP_DEVICE program runc's
cgroups/ebpf/devicefilter/devicefilter.go (1.1.5; cgroups/devices/
devicefilter.go in 1.2) generates: the rules go through the devices
emulator first, then one block per exception in the emulator's order
(type, access, major, minor tests, each jumping to the next block on a
mismatch), then the default verdict. `run` interprets such a program
without a kernel. `load`, `attach`, `detach`, `attached` and `install` are
the bpf(2) side (cgroups/ebpf/ebpf_linux.go): license "Apache",
BPF_F_ALLOW_MULTI, and on update the program a previous `install` attached
is replaced (BPF_F_REPLACE when there is exactly one, else attach then
detach). Unlike runc, which detaches every device program it finds on the
cgroup, only programs named PROG_NAME (ours) are replaced.

Layouts follow union bpf_attr in include/uapi/linux/bpf.h; LP64,
little-endian only (x86_64, aarch64), as `cabi`.
"""

from _ctypes import addressof

from .. import cabi
from .manager import CgroupError

# bpf(2) commands, program and attach types, flags
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
BPF_F_REPLACE = 4

# struct bpf_cgroup_dev_ctx: access_type = access << 16 | type; major; minor
DEVCG_DEV_BLOCK = 1
DEVCG_DEV_CHAR = 2
DEVCG_ACC_MKNOD = 1
DEVCG_ACC_READ = 2
DEVCG_ACC_WRITE = 4
_DEV = {"b": DEVCG_DEV_BLOCK, "c": DEVCG_DEV_CHAR}
_ACC = {"r": DEVCG_ACC_READ, "w": DEVCG_ACC_WRITE, "m": DEVCG_ACC_MKNOD}

LICENSE = "Apache"  # runc's: the kernel's MODULE_LICENSE format
PROG_NAME = "pyrunc_devices"  # how install() recognises its own programs (BPF_OBJ_NAME_LEN 16)

_ENOENT, _EPERM, _EACCES, _EINVAL, _ENOSPC = 2, 1, 13, 22, 28

# --- instructions --------------------------------------------------------------

# opcodes of the instructions program() emits
LDXW = 0x61  # BPF_LDX | BPF_MEM | BPF_W
AND32_IMM = 0x54  # BPF_ALU | BPF_AND | BPF_K
RSH32_IMM = 0x74  # BPF_ALU | BPF_RSH | BPF_K
MOV32_IMM = 0xB4  # BPF_ALU | BPF_MOV | BPF_K
MOV32_REG = 0xBC  # BPF_ALU | BPF_MOV | BPF_X
JNE_IMM = 0x55  # BPF_JMP | BPF_JNE | BPF_K
JNE_REG = 0x5D  # BPF_JMP | BPF_JNE | BPF_X
EXIT = 0x95  # BPF_JMP | BPF_EXIT


def insn(code, dst=0, src=0, off=0, imm=0):
    """One struct bpf_insn (little-endian: dst_reg in the low nibble)."""
    return (code | (dst | src << 4) << 8 | (off & 0xFFFF) << 16
            | (imm & 0xFFFFFFFF) << 32).to_bytes(8, "little")


def _s32(v):
    # runc: asm.JNE.Imm(reg, int32(rule.Major), ...)
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def program(rules):
    """The eBPF device filter for `rules` (a list of devices.Rule), as bytes.

    Raises CgroupError when the emulator refuses the rules.
    """
    from .devices import Emulator
    emu = Emulator.from_rules(rules)
    out = [
        insn(LDXW, 2, 1, 0),  # r2 = ctx->access_type
        insn(AND32_IMM, 2, imm=0xFFFF),  # r2 &= 0xffff: the device type
        insn(LDXW, 3, 1, 0),  # r3 = ctx->access_type
        insn(RSH32_IMM, 3, imm=16),  # r3 >>= 16: the access
        insn(LDXW, 4, 1, 4),  # r4 = ctx->major
        insn(LDXW, 5, 1, 8),  # r5 = ctx->minor
    ]
    for rule in emu.exceptions():
        acc = 0
        for ch in rule.access:
            acc |= _ACC[ch]
        block = []  # (code, dst, src, imm, jumps to the next block)
        block.append((JNE_IMM, 2, 0, _DEV[rule.type], True))
        if acc != DEVCG_ACC_READ | DEVCG_ACC_WRITE | DEVCG_ACC_MKNOD:
            block.append((MOV32_REG, 1, 3, 0, False))  # r1 = r3
            block.append((AND32_IMM, 1, 0, acc, False))  # r1 &= rule access
            block.append((JNE_REG, 1, 3, 0, True))  # if r1 != r3 goto next
        if rule.major >= 0:
            block.append((JNE_IMM, 4, 0, _s32(rule.major), True))
        if rule.minor >= 0:
            block.append((JNE_IMM, 5, 0, _s32(rule.minor), True))
        block.append((MOV32_IMM, 0, 0, int(rule.allow), False))
        block.append((EXIT, 0, 0, 0, False))
        n = len(block)
        for i, (code, dst, src, imm, jump) in enumerate(block):
            out.append(insn(code, dst, src, n - i - 1 if jump else 0, imm))
    out.append(insn(MOV32_IMM, 0, imm=int(emu.default_allow)))
    out.append(insn(EXIT))
    return b"".join(out)


# --- interpreter -----------------------------------------------------------------

_CTX = object()  # r1 at entry: a pointer to the 12-byte context
_M64 = (1 << 64) - 1
_M32 = 0xFFFFFFFF


def _sext(v, bits):
    return v - (1 << bits) if v >> (bits - 1) & 1 else v


def decode(code):
    """bytes -> [(opcode, dst, src, off, imm)] with off and imm signed."""
    if not code or len(code) % 8:
        raise ValueError(f"an eBPF program is a non-empty multiple of 8 bytes, not {len(code)}")
    out = []
    for i in range(0, len(code), 8):
        v = int.from_bytes(code[i:i + 8], "little")
        out.append((v & 0xFF, v >> 8 & 0xF, v >> 12 & 0xF, _sext(v >> 16 & 0xFFFF, 16),
                    _sext(v >> 32, 32)))
    return out


def _alu(op, a, b, bits):
    mask = _M32 if bits == 32 else _M64
    if op == 0x00:
        r = a + b
    elif op == 0x10:
        r = a - b
    elif op == 0x20:
        r = a * b
    elif op == 0x30:
        r = a // b if b else 0
    elif op == 0x40:
        r = a | b
    elif op == 0x50:
        r = a & b
    elif op == 0x60:
        r = a << (b & (bits - 1))
    elif op == 0x70:
        r = a >> (b & (bits - 1))
    elif op == 0x90:
        r = a % b if b else a
    elif op == 0xA0:
        r = a ^ b
    elif op == 0xB0:
        r = b
    else:
        raise ValueError(f"unsupported ALU operation {op:#x}")
    return r & mask


def _cond(op, a, b):
    if op == 0x10:
        return a == b
    if op == 0x50:
        return a != b
    if op == 0x20:
        return a > b
    if op == 0x30:
        return a >= b
    if op == 0xA0:
        return a < b
    if op == 0xB0:
        return a <= b
    if op == 0x40:
        return bool(a & b)
    raise ValueError(f"unsupported jump operation {op:#x}")


class Interpreter:
    """A decoded program, run against device requests."""

    __slots__ = ("insns",)

    def __init__(self, code):
        self.insns = decode(code)

    def run(self, dev_type, major, minor, access):
        """1 (allow) or 0 (deny) for `access` ("rw", or DEVCG_ACC_* bits) to a
        `dev_type` ("c", "b", or DEVCG_DEV_*) device major:minor."""
        t = _DEV[dev_type] if isinstance(dev_type, str) else dev_type
        if isinstance(access, str):
            a = 0
            for ch in access:
                a |= _ACC[ch]
        else:
            a = access
        ctx = ((a << 16 | t) & _M32).to_bytes(4, "little") + (major & _M32).to_bytes(4, "little") \
            + (minor & _M32).to_bytes(4, "little")
        return self.run_ctx(ctx)

    def run_ctx(self, ctx):
        insns = self.insns
        regs = [None] * 11
        regs[1] = _CTX
        regs[10] = None  # no stack support
        pc = 0
        steps = 0
        n = len(insns)

        def get(r):
            v = regs[r]
            if v is None:
                raise ValueError(f"insn {pc}: r{r} read before it was written")
            if v is _CTX:
                raise ValueError(f"insn {pc}: arithmetic on the context pointer r{r}")
            return v

        while True:
            if not 0 <= pc < n:
                raise ValueError(f"jump out of the program to insn {pc}")
            steps += 1
            if steps > 100000:
                raise ValueError("program does not terminate")
            code, dst, src, off, imm = insns[pc]
            cls = code & 7
            if cls == 1:  # LDX
                if code & 0xE0 != 0x60:
                    raise ValueError(f"insn {pc}: unsupported load mode {code:#x}")
                size = {0x00: 4, 0x08: 2, 0x10: 1, 0x18: 8}[code & 0x18]
                if regs[src] is not _CTX:
                    raise ValueError(f"insn {pc}: load from r{src}, which is not the context")
                if off < 0 or off + size > len(ctx):
                    raise ValueError(f"insn {pc}: context access out of bounds ({off}, {size})")
                regs[dst] = int.from_bytes(ctx[off:off + size], "little")
            elif cls in (4, 7):  # ALU, ALU64
                bits = 32 if cls == 4 else 64
                op = code & 0xF0
                if code & 8:
                    b = get(src)
                else:
                    b = imm & _M32 if bits == 32 else imm & _M64
                if bits == 32:
                    b &= _M32
                a = 0 if op == 0xB0 else get(dst)
                if bits == 32:
                    a &= _M32
                regs[dst] = _alu(op, a, b, bits)
            elif cls in (5, 6):  # JMP, JMP32
                op = code & 0xF0
                if op == 0x90 and cls == 5:  # EXIT
                    return get(0) & _M32
                if op == 0x00 and cls == 5:  # JA
                    pc += 1 + off
                    continue
                mask = _M64 if cls == 5 else _M32
                a = get(dst) & mask
                b = (get(src) if code & 8 else imm) & mask
                if _cond(op, a, b):
                    pc += 1 + off
                    continue
            else:
                raise ValueError(f"insn {pc}: unsupported opcode {code:#x}")
            pc += 1


def run(program_bytes, dev_type, major, minor, access):
    """Interpret `program_bytes` for one request: 1 allow, 0 deny."""
    return Interpreter(program_bytes).run(dev_type, major, minor, access)


# --- bpf(2) ----------------------------------------------------------------------

class BPFError(CgroupError):
    """A bpf(2) command failed; `errno` is the kernel's error."""

    def __init__(self, errno, msg):
        super().__init__(msg)
        self.errno = errno


def _bpf(cmd, attr, what):
    from ..linux import bpf
    try:
        return bpf(cmd, attr, what)
    except OSError as e:
        raise BPFError(e.errno, str(e)) from None


_u32, _u64 = cabi.c_uint32, cabi.c_uint64
_name_t = cabi.array(cabi.c_char, 16)


class _ProgLoad(cabi.Structure):
    _fields_ = [("prog_type", _u32), ("insn_cnt", _u32), ("insns", _u64), ("license", _u64),
                ("log_level", _u32), ("log_size", _u32), ("log_buf", _u64),
                ("kern_version", _u32), ("prog_flags", _u32), ("prog_name", _name_t),
                ("prog_ifindex", _u32), ("expected_attach_type", _u32)]


class _Attach(cabi.Structure):
    _fields_ = [("target_fd", _u32), ("attach_bpf_fd", _u32), ("attach_type", _u32),
                ("attach_flags", _u32), ("replace_bpf_fd", _u32)]


class _Query(cabi.Structure):
    _fields_ = [("target_fd", _u32), ("attach_type", _u32), ("query_flags", _u32),
                ("attach_flags", _u32), ("prog_ids", _u64), ("prog_cnt", _u32)]


class _GetId(cabi.Structure):
    _fields_ = [("prog_id", _u32), ("next_id", _u32), ("open_flags", _u32)]


class _InfoByFd(cabi.Structure):
    _fields_ = [("bpf_fd", _u32), ("info_len", _u32), ("info", _u64)]


class _ProgInfo(cabi.Structure):  # the head of struct bpf_prog_info, up to name
    _fields_ = [("type", _u32), ("id", _u32), ("tag", cabi.array(cabi.c_char, 8)),
                ("jited_prog_len", _u32), ("xlated_prog_len", _u32),
                ("jited_prog_insns", _u64), ("xlated_prog_insns", _u64), ("load_time", _u64),
                ("created_by_uid", _u32), ("nr_map_ids", _u32), ("map_ids", _u64),
                ("name", _name_t)]


_LOG_SIZE = 1 << 16


def load(program_bytes, name=PROG_NAME, license=LICENSE):
    """BPF_PROG_LOAD a BPF_PROG_TYPE_CGROUP_DEVICE program; returns its fd (close-on-exec).

    On failure the verifier's log is asked for and its last lines put in
    the error.
    """
    n = len(program_bytes) // 8
    if not n or len(program_bytes) % 8:
        raise CgroupError(f"load a cgroup device filter: bad program size {len(program_bytes)}")
    _raise_memlock()
    insns = cabi.array(_u64, n).from_buffer_copy(program_bytes)
    lic_b = license.encode() + b"\0"
    lic = cabi.array(cabi.c_char, len(lic_b)).from_buffer_copy(lic_b)
    attr = _ProgLoad(prog_type=BPF_PROG_TYPE_CGROUP_DEVICE, insn_cnt=n, insns=addressof(insns),
                     license=addressof(lic))
    attr.prog_name = name.encode()[:15]
    try:
        return _bpf(BPF_PROG_LOAD, attr, "bpf(BPF_PROG_LOAD) of the cgroup device filter")
    except BPFError as e:
        err = e
    log = cabi.array(cabi.c_char, _LOG_SIZE)()
    attr.log_level, attr.log_size, attr.log_buf = 1, _LOG_SIZE, addressof(log)
    try:
        return _bpf(BPF_PROG_LOAD, attr, "bpf(BPF_PROG_LOAD) of the cgroup device filter")
    except BPFError:
        pass
    lines = log.value.decode(errors="replace").strip().splitlines()
    if lines:
        raise BPFError(err.errno, f"{err}; verifier: {' | '.join(lines[-3:])}")
    raise err


_memlock_done = False


def _raise_memlock():
    # Before 5.11 BPF memory is charged to RLIMIT_MEMLOCK; runc raises it to
    # infinity and ignores failure (the host may lack CAP_SYS_RESOURCE).
    global _memlock_done
    if _memlock_done:
        return
    _memlock_done = True
    import posix
    try:
        rel = tuple(int(x) for x in posix.uname().release.split("-")[0].split(".")[:2])
    except ValueError:
        rel = (0, 0)
    if rel >= (5, 11):
        return
    from .. import linux
    try:
        linux.setrlimit(8, linux.RLIM_INFINITY, linux.RLIM_INFINITY)  # RLIMIT_MEMLOCK
    except OSError:
        pass


def attach(cgroup_fd, prog_fd, replace_fd=None):
    """BPF_PROG_ATTACH (BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI [| BPF_F_REPLACE])."""
    flags = BPF_F_ALLOW_MULTI
    if replace_fd is not None:
        flags |= BPF_F_REPLACE
    attr = _Attach(target_fd=cgroup_fd, attach_bpf_fd=prog_fd, attach_type=BPF_CGROUP_DEVICE,
                   attach_flags=flags, replace_bpf_fd=replace_fd or 0)
    what = ("bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI"
            + ("|BPF_F_REPLACE)" if replace_fd is not None else ")"))
    _bpf(BPF_PROG_ATTACH, attr, what)


def detach(cgroup_fd, prog_fd):
    """BPF_PROG_DETACH (BPF_CGROUP_DEVICE) of one program."""
    attr = _Attach(target_fd=cgroup_fd, attach_bpf_fd=prog_fd, attach_type=BPF_CGROUP_DEVICE)
    _bpf(BPF_PROG_DETACH, attr, "bpf(BPF_PROG_DETACH, BPF_CGROUP_DEVICE)")


def attached(cgroup_fd):
    """The ids of the device programs attached directly to the cgroup (BPF_PROG_QUERY)."""
    size = 64  # the kernel's limit per cgroup and attach type
    for _ in range(10):
        ids = cabi.array(_u32, size)()
        attr = _Query(target_fd=cgroup_fd, attach_type=BPF_CGROUP_DEVICE,
                      prog_ids=addressof(ids), prog_cnt=size)
        try:
            _bpf(BPF_PROG_QUERY, attr, "bpf(BPF_PROG_QUERY, BPF_CGROUP_DEVICE)")
        except BPFError as e:
            if e.errno == _ENOSPC:  # prog_cnt now holds the real count
                size = max(attr.prog_cnt, size * 2)
                continue
            raise
        return list(ids[:attr.prog_cnt])
    raise CgroupError("bpf(BPF_PROG_QUERY, BPF_CGROUP_DEVICE): could not get a complete list")


def prog_fd(prog_id):
    """BPF_PROG_GET_FD_BY_ID."""
    return _bpf(BPF_PROG_GET_FD_BY_ID, _GetId(prog_id=prog_id),
                f"bpf(BPF_PROG_GET_FD_BY_ID, {prog_id})")


def prog_info(fd):
    """(id, name) of a loaded program (BPF_OBJ_GET_INFO_BY_FD)."""
    info = _ProgInfo()
    attr = _InfoByFd(bpf_fd=fd, info_len=cabi.sizeof(info), info=addressof(info))
    _bpf(BPF_OBJ_GET_INFO_BY_FD, attr, "bpf(BPF_OBJ_GET_INFO_BY_FD)")
    return info.id, info.name.decode(errors="replace")


def _own_programs(cgroup_fd):
    """fds of the programs attached to the cgroup that we (PROG_NAME) attached."""
    import posix
    fds = []
    for pid in attached(cgroup_fd):
        try:
            fd = prog_fd(pid)
        except BPFError as e:
            # gone meanwhile, or hidden from us by an LSM (runc skips those too)
            if e.errno in (_ENOENT, _EPERM, _EACCES):
                continue
            for f in fds:
                posix.close(f)
            raise
        try:
            ours = prog_info(fd)[1] == PROG_NAME
        except BaseException:
            posix.close(fd)
            for f in fds:
                posix.close(f)
            raise
        if ours:
            fds.append(fd)
        else:
            posix.close(fd)
    return fds


def install(cgroup_fd, program_bytes):
    """Load `program_bytes` and attach it to the cgroup, replacing our earlier filters.

    One earlier filter of ours is replaced atomically (BPF_F_REPLACE; on
    kernels without it, EINVAL, attach then detach); several are detached
    after the new one is attached, so the cgroup is never unfiltered.
    Programs anyone else attached stay.
    """
    import posix
    old = _own_programs(cgroup_fd)
    try:
        fd = load(program_bytes)
        try:
            if len(old) == 1:
                try:
                    attach(cgroup_fd, fd, replace_fd=old[0])
                    return
                except BPFError as e:
                    if e.errno != _EINVAL:
                        raise
            attach(cgroup_fd, fd)
            for o in old:
                detach(cgroup_fd, o)
        finally:
            posix.close(fd)
    finally:
        for o in old:
            posix.close(o)
