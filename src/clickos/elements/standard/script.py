"""Script and DriverManager: a small language for driving a configuration."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import IO, Any

from clickos.core.args import Args
from clickos.core.confparse import parse_bool, shift_word, uncomment, unquote
from clickos.core.element import Element
from clickos.core.errors import ClickError, ConfigError, ContextErrorHandler, ErrorHandler
from clickos.core.expand import (
    FUNCTIONS,
    NO_PARAM,
    PRIVATE,
    call_function,
    expand,
    parse_int_or_none,
    parse_signal,
    parse_time_ns,
    resolve_call,
)
from clickos.core.handlers import PRIVATE as PRIVATE_FLAG
from clickos.core.handlers import READ_PARAM
from clickos.core.task import Timer
from clickos.packet.batch import PacketBatch

# Instruction codes.  Negative codes double as goto targets ("goto end").
INITIAL, WAIT_STEP, WAIT_TIME = 0, 1, 2
PRINT, PRINTQ, PRINTN, PRINTNQ = 3, 4, 5, 6
READ, READQ, WRITE, WRITEQ = 7, 8, 9, 10
SET, SETQ, INIT, INITQ, EXPORT, EXPORTQ = 11, 12, 13, 14, 15, 16
SAVE, APPEND = 17, 18
LABEL, GOTO, RETURN, RETURNQ = 19, 20, 21, 22
WAIT_PSEUDO, LOOP_PSEUDO = 23, 24
EXIT, END, STOP, ERROR, ERRORQ = -1, -2, -3, -4, -5

INSTRUCTIONS: dict[str, int] = {
    "append": APPEND, "end": END, "error": ERROR, "errorq": ERRORQ, "exit": EXIT,
    "export": EXPORT, "exportq": EXPORTQ, "goto": GOTO, "init": INIT, "initq": INITQ,
    "label": LABEL, "loop": LOOP_PSEUDO, "pause": WAIT_STEP, "print": PRINT,
    "printn": PRINTN, "printnq": PRINTNQ, "printq": PRINTQ, "read": READ, "readq": READQ,
    "return": RETURN, "returnq": RETURNQ, "save": SAVE, "set": SET, "setq": SETQ,
    "stop": STOP, "wait": WAIT_PSEUDO, "wait_for": WAIT_TIME, "wait_step": WAIT_STEP,
    "wait_stop": WAIT_STEP, "wait_time": WAIT_TIME, "write": WRITE, "writeq": WRITEQ,
}

# Script types.
ACTIVE, DRIVER, SIGNAL, PASSIVE, PROXY, PACKET = range(6)

MAX_JUMPS = 1000
STEP_NORMAL, STEP_ROUTER, STEP_TIMER, STEP_JUMP = 0, 1, 2, 3
ST_STEP, ST_RUN, ST_GOTO = 0, 1, 2
VAR_GET, VAR_SET, VAR_SHIFT = 0, 1, 2


def default_errh() -> ErrorHandler:
    """The process-wide error reporter (standard error), as Click's default handler."""
    return ErrorHandler()


def _encode(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _write_stdout(text: str) -> None:
    out = sys.stdout
    try:
        buf = getattr(out, "buffer", None)
        if buf is not None:
            out.flush()
            buf.write(_encode(text))
            buf.flush()
        else:
            out.write(text)
            out.flush()
    except (OSError, ValueError):
        pass


class _Insn:
    __slots__ = ("op", "arg", "arg2", "text", "var")

    def __init__(self, op: int, arg: int = 0, arg2: int = 0, text: str = "", var: str = "") -> None:
        self.op = op
        self.arg = arg
        self.arg2 = arg2
        self.text = text
        self.var = var


class _ErrorCollector(ErrorHandler):
    """Keeps error texts for re-raising; drops other messages."""

    def __init__(self) -> None:
        super().__init__(echo=False)
        self.errors: list[str] = []

    def error(self, message: str, landmark: str | None = None) -> int:
        self.errors.append(message)
        return super().error(message, landmark)


class _Reader:
    """A read handler backed by ``fn(param, errh) -> (status, text)``.

    The router calls it with the parameter alone (errors are raised, so the caller's
    ErrorHandler reports them); Script's own handler calls use ``with_errh`` and so
    report straight to the caller's ErrorHandler."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[str, ErrorHandler], tuple[int, str]]) -> None:
        self.fn = fn

    def __call__(self, param: str = "") -> str:
        eh = _ErrorCollector()
        status, text = self.fn(param, eh)
        if eh.errors:
            raise ClickError("\n".join(eh.errors))
        return text if status >= 0 else ""

    def with_errh(self, param: str, errh: ErrorHandler) -> str:
        status, text = self.fn(param, errh)
        return text if status >= 0 else ""


class _Writer:
    """A write handler backed by ``fn(value, errh) -> status``; ``with_errh`` gives the
    raw status (1 after ``stop``, for example) to Script's own calls."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[str, ErrorHandler], int]) -> None:
        self.fn = fn

    def __call__(self, value: str, errh: ErrorHandler) -> int:
        return self.fn(value, errh)

    def with_errh(self, value: str, errh: ErrorHandler) -> int:
        return self.fn(value, errh)


class Script(Element):
    """Script(INSTRUCTIONS...)

    Runs a small script that controls a configuration.

    Each argument is an instruction; the script mostly runs them in order.  A
    Script can set variables, call handlers, print, wait for a time or for a
    prod from elsewhere, branch, and stop the router.  The ``TYPE`` keyword says
    when it runs (see Script types below).

    Text substitution.  Before most instructions act, their text is expanded:
    ``$x`` and ``${x}`` become the value of script variable x (a variable that
    was never declared is left as written), and ``$(HANDLER ARGS...)`` becomes
    the result of calling a read handler, with nested ``$`` references expanded
    first.  A handler name without an element part means, first, a handler of
    this Script (so ``$(add 1 2)`` uses the functions below), then a global
    handler.  Inside single quotes nothing is expanded; inside double quotes
    the inserted text is escaped so the quoting still holds.  Special
    variables: ``$?`` is the status of the last ``write``; ``$$`` is the
    process id; in PASSIVE and PROXY scripts ``$args`` holds the run
    arguments, ``$1`` ... ``$9`` their space-separated words, ``$#`` how many
    there are, ``$0`` the name of the handler that started the run and
    ``$write`` whether it was called as a write handler; in PACKET scripts
    ``$input`` is the input port of the packet.

    Instructions.  A name ending in ``q`` removes one level of quotes from the
    expanded text before using it.

    - ``set VAR TEXT`` / ``setq VAR TEXT``: give variable VAR a value.
    - ``init VAR [TEXT]`` / ``initq``: set VAR once, when the element initializes;
      later executions do nothing.
    - ``export VAR [TEXT]`` / ``exportq``: like ``init``, and also offer VAR as a
      read handler of this element.
    - ``print [>FILE | >>FILE] [TEXT | HANDLER]``: print TEXT (unquoted), or, if
      the argument starts with a letter, ``@`` or ``_``, the value of that read
      handler, then a newline, on standard output or written/appended to FILE.
      ``printn`` omits the newline; ``printq``/``printnq`` unquote the handler
      parameter.  ``save TEXT [FILE]`` and ``append TEXT [FILE]`` are
      ``print >FILE TEXT`` and ``print >>FILE TEXT``.
    - ``read HANDLER [ARGS]`` / ``readq``: report ``NAME:`` and the handler's
      value on standard error.
    - ``write HANDLER [ARGS]`` / ``writeq``: call a write handler; its status is
      ``$?`` afterwards.
    - ``pause [COUNT]`` (also ``wait_step``, ``wait_stop``, or ``wait`` with no
      argument): block until the ``step`` handler has been called COUNT times
      (default 1).  In a DRIVER script each driver stop request is a step.
    - ``wait TIME`` (also ``wait_time``, ``wait_for``): block for TIME (seconds
      with an optional unit), or until a step, whichever comes first.
    - ``label NAME``; ``goto NAME [CONDITION]``: jump to a label when CONDITION
      (a boolean after expansion) is true or absent.  ``goto`` also knows the
      targets ``begin``/``loop`` (the first instruction), ``end``, ``exit``,
      ``stop`` and ``error``, which act like the instructions of those names.
      A script that makes 1000 jumps without blocking is stopped with ``too
      many jumps, giving up``.
    - ``loop``: jump to the first instruction.
    - ``end``: finish.  A SIGNAL script becomes ready for its signal again; a
      PACKET script emits the packet on output 0.  Falling off the end of a
      script is an ``end`` (a ``stop`` for DRIVER scripts).
    - ``exit``: finish; a SIGNAL script is not re-armed, a PACKET script drops
      its packet.
    - ``stop``: finish like ``end`` and ask the driver to stop (a DRIVER script
      or DriverManager may intercept that request).
    - ``return [VALUE]`` / ``returnq``: finish, giving VALUE as the result of a
      PASSIVE script's ``run`` handler, or the output port of a PACKET script.
    - ``error [MESSAGE]`` / ``errorq``: finish with an error, reporting MESSAGE.

    Script types (``TYPE`` keyword):

    - ``ACTIVE``: starts when the router initializes; the default for a Script
      without ports.
    - ``PASSIVE``: runs only when its ``run`` handler is called, and returns the
      value of its ``return`` instruction.
    - ``PACKET``: runs for every packet that arrives (push or pull); the result
      of ``return`` chooses the output port.  The default for a Script with
      ports.
    - ``PROXY``: every handler name that is not one of Script's own becomes a
      handler of this element that runs the script (``$0`` tells which).
    - ``DRIVER``: an active script that also decides when the driver stops; see
      DriverManager.  A router may have only one.
    - ``SIGNAL SIGNO...``: runs when one of the named signals (``INT``, ``HUP``,
      ``USR1``... or numbers) arrives.  While it runs the signal is blocked; it
      is re-armed when the script ends with ``end``.  If no script is armed for
      a signal, the signal's default action takes place.

    Handlers:

    - ``step`` (write): advance past COUNT (default 1) blocking instructions;
      ``router`` is the driver's own stop-time step.
    - ``goto`` (write): move to the given label and continue from there.
    - ``run`` (read with parameters, write): run the script from the start with
      ``$args`` set to the parameters; the read returns the ``return`` value.
    - ``get VAR`` (read), ``set VAR VALUE`` (write), ``shift [VAR]`` (read:
      remove and return the first word of VAR, default ``args``).
    - Functions, read handlers with parameters: ``add``, ``sub``, ``mul``,
      ``div`` (floating point), ``idiv`` (truncating), ``min``, ``max`` over
      lists of numbers; ``mod`` (integers) and ``rem`` (also floating point);
      ``neg``, ``abs``; ``eq``, ``ne``, ``lt``, ``gt``, ``le``, ``ge`` (numbers
      if both parse, else strings); ``not``, ``and``, ``or``, ``nand``, ``nor``;
      ``if COND A B``; ``in X Y...`` (is X among the Ys); ``first``;
      ``sprintf FORMAT ARGS...`` (``%d %i %u %o %x %X %s %%`` with flags, width
      and precision); ``random [N1 N2]``; ``length``; ``unquote``;
      ``readable``/``writable`` (do all these handlers exist?); ``htons``,
      ``htonl``, ``ntohs``, ``ntohl``; ``now`` (read: the current time);
      ``cat FILE``/``catq FILE`` (a file's contents, raw or quoted) and ``kill
      SIGNO PID...`` (both hidden from remote control).

    Example -- print 0 to 4, then stop the router::

        Script(set x 0,
               label again,
               print $x,
               set x $(add $x 1),
               goto again $(lt $x 5),
               stop)
    """

    port_count = "-/-"
    processing = "ah/ah"
    _default_type: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self._type: int | None = self._default_type
        self._insns: list[_Insn] = []
        self._vars: dict[str, str] = {}
        self._signos: list[int] = []
        self._pos = 0
        self._step_count = 0
        self._write_status = 0
        self._run_handler_name = ""
        self._run_args = ""
        self._run_write = False
        self._cur_steps: list[int] | None = None
        self._timer: Timer | None = None

    # -- configuration -----------------------------------------------------------------
    def _add_insn(self, op: int, arg: int = 0, arg2: int = 0, text: str = "", var: str = "") -> None:
        # Execution starts at a blocking point: INITIAL, unless the script opens with a wait.
        if not self._insns and op not in (INITIAL, WAIT_STEP, WAIT_TIME):
            self._add_insn(INITIAL)
        self._insns.append(_Insn(op, arg, arg2, text, var))

    def _find_label(self, label: str) -> int:
        for i, insn in enumerate(self._insns):
            if insn.op == LABEL and insn.text == label:
                return i
        code = INSTRUCTIONS.get(label)
        if code is None:
            code = parse_int_or_none(label, 32, True)
        if code is not None and code < 0:
            return code
        if label in ("begin", "loop"):
            return 0
        return len(self._insns)

    def configure(self, conf: list[str], errh: ErrorHandler) -> None:
        a = Args(conf, self)
        type_arg = a.read("TYPE") or ""
        conf = a.consume()
        word, rest = shift_word(type_arg)
        if word == "ACTIVE" and not rest:
            self._type = ACTIVE
        elif word == "PASSIVE" and not rest:
            self._type = PASSIVE
        elif word in ("PACKET", "PUSH") and not rest:
            self._type = PACKET
        elif word == "PROXY" and not rest:
            self._type = PROXY
        elif word == "DRIVER" and not rest:
            self._type = DRIVER
        elif word == "SIGNAL":
            self._type = SIGNAL
            while True:
                word, rest = shift_word(rest)
                signo = parse_signal(word) if word else None
                if signo is None or not 0 <= signo < 32:
                    break
                self._signos.append(signo)
            if word or not self._signos:
                raise ConfigError("bad signal number")
        elif word:
            raise ConfigError("bad TYPE")
        elif self._type is None:
            self._type = PACKET if (self.ninputs or self.noutputs) else ACTIVE

        if self._type == DRIVER:
            if self.router.attachments.get("Script") is not None:
                raise ConfigError("router has more than one driver script")
            self.router.attachments["Script"] = self
        if self._type == PACKET and self.ninputs == 0:
            raise ConfigError("PACKET script must have inputs")
        if self._type != PACKET and (self.ninputs or self.noutputs):
            raise ConfigError("ports allowed only on PACKET scripts")

        for arg in conf:
            name, rest = shift_word(arg)
            if not name:
                continue
            op = INSTRUCTIONS.get(name)
            if op is None or not self._configure_insn(op, rest):
                errh.error(f"syntax error at '{name}'")

        for insn in self._insns:
            if insn.op == GOTO and insn.text:
                target, insn.text = shift_word(insn.text)
                insn.arg = self._find_label(target)
                if insn.arg >= len(self._insns):
                    errh.error(f"no such label '{target}'")

        if not self._insns and self._type == DRIVER:
            self._add_insn(WAIT_STEP, 1)
        self._add_insn(STOP if self._type == DRIVER else END)

    def _configure_insn(self, op: int, rest: str) -> bool:
        """Add one instruction; False means a syntax error."""
        if op == WAIT_PSEUDO:
            op = WAIT_TIME if rest else WAIT_STEP
        if op == WAIT_STEP:
            n = 1 if not rest else parse_int_or_none(rest, 32, False)
            if n is None:
                return False
            self._add_insn(WAIT_STEP, n)
        elif op in (WRITE, WRITEQ, READ, READQ, PRINT, PRINTQ, PRINTN, PRINTNQ, SAVE, APPEND, GOTO,
                    WAIT_TIME):
            self._add_insn(op, text=rest)
        elif op in (RETURN, RETURNQ, SET, SETQ, INIT, INITQ, EXPORT, EXPORTQ):
            if op in (RETURN, RETURNQ):
                rest = "_ " + rest
            var, rest = shift_word(rest)
            if not var or (op in (SET, SETQ) and not rest):
                return False
            self._vars.setdefault(var, "")
            self._add_insn(op, text=rest, var=var)
        elif op == LABEL:
            word, extra = shift_word(rest)
            if not word or extra:
                return False
            self._add_insn(LABEL, text=word)
        elif op in (LOOP_PSEUDO, END, EXIT, STOP, ERROR, ERRORQ):
            if op == LOOP_PSEUDO:
                op = GOTO
            if rest and op not in (ERROR, ERRORQ):
                return False
            self._add_insn(op, text=rest)
        else:
            return False
        return True

    # -- initialization ----------------------------------------------------------------
    def initialize(self, errh: ErrorHandler) -> None:
        self._pos = 0
        self._step_count = 0
        self._timer = Timer(self._run_timer, self)
        self._timer.initialize(self)
        for insn in self._insns:
            if insn.op in (INIT, EXPORT):
                self._vars[insn.var] = self._expand(insn.text, errh)
            elif insn.op in (INITQ, EXPORTQ):
                self._vars[insn.var] = unquote(self._expand(insn.text, errh))
        first = self._insns[0]
        if self._type in (SIGNAL, PASSIVE, PACKET, PROXY):
            pass
        elif first.op == WAIT_TIME:
            ns = parse_time_ns(self._expand(first.text, errh))
            if ns is not None:
                self._timer.schedule_after(ns)
            else:
                # Click reports this but lets the router run anyway.
                ContextErrorHandler(default_errh(), f"While initializing '{self.declaration()}':",
                                    self.landmark or None).error("syntax error at 'wait'")
        elif first.op == INITIAL:
            if self._type == DRIVER:
                self.router.adjust_runcount(-1)
            else:
                self._timer.schedule_now()
            first.arg = 1
        if self._type == SIGNAL:
            self._arm_signals()

    def _arm_signals(self) -> None:
        master = self.router.master
        for signo in self._signos:
            master.add_signal_handler(signo, self, self._on_signal)

    # -- handlers --------------------------------------------------------------------------
    def add_handlers(self) -> None:
        def step_writer(what: int, hname: str) -> _Writer:
            return _Writer(lambda value, errh: self._step_handler(what, True, hname, value, errh)[0])

        self.add_write_handler("step", step_writer(ST_STEP, "step"))
        self.add_write_handler("goto", step_writer(ST_GOTO, "goto"))
        self._add_run_handler("run")
        for name in FUNCTIONS:
            self._add_function(name)
        self.add_read_handler("get", _Reader(lambda p, eh: self._var_handler(VAR_GET, p, eh)), READ_PARAM)
        self.add_write_handler("set", _Writer(lambda v, eh: self._var_handler(VAR_SET, v, eh)[0]))
        self.add_read_handler("shift", _Reader(lambda p, eh: self._var_handler(VAR_SHIFT, p, eh)),
                              READ_PARAM)
        if self._type == PROXY:
            self.add_write_handler("*", self._star_handler)
        for insn in self._insns:
            if insn.op in (EXPORT, EXPORTQ):
                var = insn.var
                self.add_read_handler(var, lambda var=var: self._vars.get(var, ""))

    def _add_run_handler(self, hname: str) -> None:
        self.add_read_handler(hname, _Reader(lambda p, eh: self._step_handler(ST_RUN, False, hname, p, eh)),
                              READ_PARAM)
        self.add_write_handler(hname, _Writer(
            lambda v, eh: self._step_handler(ST_RUN, True, hname, v, eh)[0]))

    def _add_function(self, name: str) -> None:
        def run(param: str, errh: ErrorHandler) -> tuple[int, str]:
            out = call_function(name, param, self, errh)
            return (-1, "") if out is None else (0, out)

        flags = 0 if name in NO_PARAM else READ_PARAM
        if name in PRIVATE:
            flags |= PRIVATE_FLAG
        self.add_read_handler(name, _Reader(run), flags)

    def _star_handler(self, value: str, errh: ErrorHandler) -> int:
        # PROXY scripts: any other handler name becomes a run-like handler.
        self._add_run_handler(value)
        return 0

    def _var_handler(self, what: int, text: str, errh: ErrorHandler) -> tuple[int, str]:
        varname, rest = shift_word(text)
        if not varname and what == VAR_SHIFT:
            varname = "args"
        if not varname:
            errh.error("no variable")
            return -1, ""
        if rest and what in (VAR_GET, VAR_SHIFT):
            errh.error("too many arguments")
            return -1, ""
        if varname == "args":
            value = self._run_args
        elif varname in self._vars or what == VAR_SET:
            value = self._vars.get(varname, "")
        else:
            errh.error(f"undefined variable '{varname}'")
            return -1, ""
        if what == VAR_GET:
            return 0, value
        if what == VAR_SET:
            value, out = rest, ""
        else:
            out, value = shift_word(value)
        if varname == "args":
            self._run_args = value
        else:
            self._vars[varname] = value
        return 0, out

    # -- expansion ---------------------------------------------------------------------------
    def _expand(self, text: str, errh: ErrorHandler, expand_quote: bool = False) -> str:
        def lookup(name: str, kind: str) -> str | None:
            if kind == "(":
                call = resolve_call(name, self, False, errh)
                return call.call_read(errh) if call is not None else None
            if name in self._vars:
                return self._vars[name]
            if name == "?":
                return str(self._write_status)
            if name == "args":
                return self._run_args
            if name == "$":
                return str(os.getpid())
            if name == "0":
                return self._run_handler_name
            if name and "1" <= name[0] <= "9":
                n = parse_int_or_none(name, 32, True)
                if n is not None:
                    word, rest = "", self._run_args
                    for _ in range(n):
                        word, rest = shift_word(rest)
                    return word
            if name == "#":
                count, rest = 0, self._run_args
                while True:
                    word, rest = shift_word(rest)
                    if not word:
                        return str(count)
                    count += 1
            if name == "write":
                return "true" if self._run_write else "false"
            return None

        return expand(text, lookup, expand_quote)

    # -- running -----------------------------------------------------------------------------
    def _step(self, nsteps: int, step_type: int, njumps: int, errh: ErrorHandler) -> int:
        """Run from the current instruction until something blocks or finishes.

        ``nsteps`` is how many blocking points may be passed; returns the updated jump
        count (plus one), as Click's Script::step does."""
        insns = self._insns
        nsteps += self._step_count
        while nsteps - self._step_count >= 0 and self._pos < len(insns) and njumps < MAX_JUMPS:
            ipos = self._pos
            self._pos += 1
            insn = insns[ipos]
            op = insn.op
            if op == STOP:
                self._step_count += 1
                self._pos -= 1
                if step_type != STEP_ROUTER:
                    self.router.adjust_runcount(-1)
                return njumps + 1
            elif op == WAIT_STEP:
                while self._step_count < nsteps and insn.arg2 < insn.arg:
                    insn.arg2 += 1
                    self._step_count += 1
                if self._step_count == nsteps and insn.arg2 < insn.arg:
                    self._pos -= 1
                    break
            elif op == WAIT_TIME:
                if self._step_count == nsteps:
                    ns = parse_time_ns(self._expand(insn.text, errh))
                    if ns is not None:
                        assert self._timer is not None
                        self._timer.schedule_after(ns)
                        self._pos -= 1
                    else:
                        errh.error("syntax error at 'wait'")
                    break
                self._step_count += 1
                if self._timer is not None:
                    self._timer.unschedule()
            elif op == INITIAL:
                if insn.arg:
                    self._step_count += 1
                    insn.arg = 0
            elif op in (PRINT, PRINTQ, PRINTN, PRINTNQ, SAVE, APPEND):
                self._do_print(insn, errh)
            elif op in (READ, READQ):
                call = resolve_call(self._expand(insn.text, errh), self, False, errh, op == READQ)
                if call is not None:
                    cerrh = ContextErrorHandler(errh, f"While calling '{call.unparse()}':")
                    result = call.call_read(cerrh)
                    default_errh().message(f"{call.name}:\n{result}\n")
            elif op in (WRITE, WRITEQ):
                call = resolve_call(self._expand(insn.text, errh), self, True, errh, op == WRITEQ)
                if call is not None:
                    cerrh = ContextErrorHandler(errh, f"While calling '{call.unparse()}':")
                    self._write_status = call.call_write(cerrh)
            elif op in (SET, SETQ, RETURN, RETURNQ):
                value = self._expand(insn.text, errh)
                if op in (SETQ, RETURNQ):
                    value = unquote(value)
                self._vars[insn.var] = value
                if op in (RETURN, RETURNQ) and self._pos == ipos + 1:
                    self._pos -= 1
                    break
            elif op == GOTO:
                cond_text = self._expand(insn.text, errh)
                cond = True
                if cond_text:
                    try:
                        cond = parse_bool(cond_text)
                    except ConfigError:
                        errh.error(f"bad condition '{cond_text}'")
                        cond = False
                if cond:
                    if insn.arg < 0:
                        self._pos -= 1
                        return njumps + 1
                    for i in range(insn.arg, ipos):
                        if insns[i].op == WAIT_STEP:
                            insns[i].arg2 = 0
                    self._pos = insn.arg
            elif op in (ERROR, ERRORQ, END, EXIT):
                if op in (ERROR, ERRORQ):
                    msg = self._expand(insn.text, errh)
                    if op == ERRORQ:
                        msg = unquote(msg)
                    if msg:
                        errh.error(msg)
                self._pos -= 1
                return njumps + 1
            if self._pos != ipos + 1:
                njumps += 1
        if njumps >= MAX_JUMPS:
            default_errh().error(f"{self.declaration()}: too many jumps, giving up")
            self._pos = len(insns)
            if self._timer is not None:
                self._timer.unschedule()
        if step_type == STEP_ROUTER:
            self.router.adjust_runcount(1)
        return njumps + 1

    def _do_print(self, insn: _Insn, errh: ErrorHandler) -> None:
        op, text = insn.op, insn.text
        if op in (SAVE, APPEND):
            word, rest = shift_word(text)
            text = (">" if op == SAVE else ">>") + (rest or "-") + " " + word
        f: IO[bytes] | None = None
        if text.startswith(">"):
            append = text.startswith(">>")
            text = text[2 if append else 1:]
            filename, text = shift_word(text)
            if filename and filename != "-":
                try:
                    f = open(filename, "ab" if append else "wb")  # noqa: SIM115 - closed below
                except OSError as e:
                    errh.error(f"{filename}: {e.strerror}")
                    return
        before = errh.nerrors
        result = ""
        if text and ((text[0].isascii() and text[0].isalpha()) or text[0] in "@_"):
            call = resolve_call(self._expand(text, errh), self, False, errh, op in (PRINTQ, PRINTNQ))
            if call is not None:
                cerrh = ContextErrorHandler(errh, f"While calling '{call.unparse()}':")
                result = call.call_read(cerrh)
        else:
            result = unquote(self._expand(text, errh, True))
        if errh.nerrors == before and not result.endswith("\n") and op not in (PRINTN, PRINTNQ):
            result += "\n"
        if f is None:
            _write_stdout(result)
        else:
            try:
                f.write(_encode(result))
            finally:
                f.close()

    def _complete_step(self) -> tuple[int, str]:
        """After stepping: (status, result).  Status is -1 after ``error``, 1 after
        ``stop``, else 0; the result is the ``return`` value, or "0" when a PACKET
        script ended normally."""
        if 0 <= self._pos < len(self._insns):
            insn = self._insns[self._pos]
            last = insn.op
            if last == GOTO and insn.arg < 0:
                last = insn.arg
        else:
            last = EXIT
        if last == END and self._type == SIGNAL:
            self._arm_signals()
        result = ""
        if last in (RETURN, RETURNQ):
            result = self._vars.get("_", "")
        elif last == END and self._type == PACKET:
            result = "0"
        if last in (ERROR, ERRORQ):
            return -1, result
        return (1 if last == STOP else 0), result

    def _step_handler(self, what: int, is_write: bool, hname: str, value: str,
                      errh: ErrorHandler) -> tuple[int, str]:
        """The ``step``, ``goto`` and ``run`` handlers (and PROXY handlers)."""
        data = uncomment(value)
        self._run_handler_name = hname
        self._run_write = is_write
        ret = 0
        try:
            if what == ST_GOTO:
                target = self._find_label(uncomment(data))
                if not 0 <= target < len(self._insns):
                    errh.error("jump to nonexistent label")
                    return -1, ""
                for insn in self._insns[target:]:
                    if insn.op == WAIT_STEP:
                        insn.arg2 = 0
                self._pos = target
                nsteps, step_type = 0, STEP_JUMP
            elif what == ST_RUN:
                self._pos = 0
                self._run_args = value
                nsteps, step_type = 0, STEP_JUMP
            elif data == "router":
                nsteps, step_type = 1, STEP_ROUTER
            elif not data:
                nsteps, step_type = 1, STEP_NORMAL
            else:
                n = parse_int_or_none(data, 32, True)
                if n is None:
                    errh.error("syntax error")
                    return -1, ""
                nsteps, step_type = n, STEP_NORMAL
            if self._cur_steps is None:
                cell = [nsteps]
                self._cur_steps = cell
                njumps = 0
                try:
                    while cell[0] >= 0:
                        nsteps = cell[0]
                        cell[0] = -1
                        njumps = self._step(nsteps, step_type, njumps, errh)
                        step_type = STEP_NORMAL
                finally:
                    self._cur_steps = None
            elif what == ST_STEP:
                self._cur_steps[0] += nsteps
            ret, result = self._complete_step()
            return ret, result
        finally:
            self._run_handler_name = ""
            if ret or not self._run_args:
                self._run_args = ""
            self._run_write = False

    def _run_timer(self, timer: Timer) -> None:
        cerrh = ContextErrorHandler(default_errh(), f"While executing '{self.declaration()}':")
        self._step(1, STEP_TIMER, 0, cerrh)
        self._complete_step()

    def _on_signal(self) -> bool:
        status, _ = self._step_handler(ST_RUN, True, "run", "", default_errh())
        return status >= 0

    def driver_step(self) -> bool:
        """The driver's stop-time step (Click's ``step router``): True while the script
        wants to keep going.  Stepping adjusts the router's runcount as Click does, so
        a script that blocks again leaves the router running."""
        status, _ = self._step_handler(ST_STEP, True, "step", "router", default_errh())
        return status == 0

    # -- packets -------------------------------------------------------------------------------
    def _packet_port(self, port: int) -> int:
        cerrh = ContextErrorHandler(default_errh(), f"While executing '{self.declaration()}':")
        self._vars["input"] = str(port)
        self._pos = 0
        self._step(0, STEP_JUMP, 0, cerrh)
        _, out = self._complete_step()
        outport = parse_int_or_none(out, 32, True)
        return -1 if outport is None else outport

    def push(self, port: int, batch: PacketBatch) -> None:
        for p in batch:
            one = p.as_batch()
            self.checked_output_push(self._packet_port(port), one)

    def pull(self, port: int, max: int = 1) -> PacketBatch | None:
        kept: list[PacketBatch] = []
        for _ in range(max):
            batch = self.inputs[0].pull(1)
            if batch is None:
                break
            for p in batch:
                one = p.as_batch()
                outport = self._packet_port(0)
                if outport == 0:
                    kept.append(one)
                else:
                    self.checked_output_push(outport, one)
        return PacketBatch.concat(kept)

    # -- introspection -----------------------------------------------------------------------
    @property
    def script_type(self) -> str:
        """The script's type as its TYPE keyword spells it."""
        names = {ACTIVE: "ACTIVE", DRIVER: "DRIVER", SIGNAL: "SIGNAL", PASSIVE: "PASSIVE",
                 PROXY: "PROXY", PACKET: "PACKET"}
        return names.get(self._type if self._type is not None else ACTIVE, "ACTIVE")

    def variables(self) -> dict[str, Any]:
        """A copy of the script's variables (for tests and tools)."""
        return dict(self._vars)


class DriverManager(Script):
    """DriverManager(INSTRUCTIONS...)

    A Script that decides when the driver stops.

    DriverManager is a Script whose TYPE defaults to ``DRIVER``; everything in
    Script's manual applies.  Normally a driver stop request -- from a ``stop``
    handler write, a ``STOP true`` source that runs dry, a ``stop`` instruction
    -- ends the run at once.  With a DRIVER script present, each request is
    instead a ``step`` of that script, and the driver stops only when the
    script reaches ``stop`` (or its end, which for a DRIVER script is a
    ``stop``).  So ``pause`` (or ``wait`` with no argument) waits for the next
    stop request, and the script can finish work before the router goes down.
    A DriverManager with no instructions waits for one stop request and stops.
    A router may contain only one DRIVER script.

    Example -- when the source runs dry, wait a tenth of a second for packets
    in flight, then print a count::

        InfiniteSource(LIMIT 5, STOP true) -> c :: Counter -> Discard;
        DriverManager(pause, wait 0.1s, print c.count)
    """

    _default_type = DRIVER
