"""Script and DriverManager: every instruction, type, handler and function.

Expected outputs were checked against Click 2.1 running the same configurations.
"""

from __future__ import annotations

import os
import signal

import pytest
from conftest import build, click, run

from clickos.core.errors import ErrorHandler
from clickos.core.expand import FUNCTIONS, expand, format_double, resolve_call


def out_of(capsys: pytest.CaptureFixture[str], text: str, simtime: bool = True) -> tuple[str, str]:
    """Run ``text`` to completion; (stdout, stderr) including the router's errors."""
    r = run(text, simtime=simtime)
    cap = capsys.readouterr()
    return cap.out, cap.err + r.errors


def fn(name: str, param: str = "") -> str:
    return FUNCTIONS[name](param, None)


# -- functions -------------------------------------------------------------------------------

@pytest.mark.parametrize("name,param,want", [
    ("add", "1 2 3", "6"), ("add", "", "0"), ("add", "010 1", "9"), ("add", "0x10 0b11", "19"),
    ("add", "1.5 1", "2.5"), ("add", "1e3 1", "1001"),
    ("add", "9223372036854775807 1", "-9223372036854775808"),
    ("add", "9223372036854775808 1", "9.22337203685e+18"),
    ("sub", "10 2 2", "6"), ("sub", "1.5", "1.5"), ("min", "10 6 20", "6"), ("max", "-1 6 3", "6"),
    ("min", "", "1"), ("mul", "1 2 3", "6"), ("mul", "", "1"), ("mul", "4294967296 4294967296", "0"),
    ("div", "75 2.5 5", "6"), ("div", "7 2", "3.5"), ("div", "1 3", "0.333333333333"),
    ("div", "1 0", "inf"), ("div", "-1 0", "-inf"), ("div", "0 0", "-nan"),
    ("idiv", "60 2 5", "6"), ("idiv", "7 2", "3"), ("idiv", "1 0", "-9223372036854775808"),
    ("mod", "7 3", "1"), ("mod", "-7 3", "-1"), ("rem", "7.5 2", "1.5"), ("rem", "-7 3", "-1"),
    ("neg", "5", "-5"), ("neg", "1.5", "-1.5"), ("neg", "-9223372036854775808", "-9223372036854775808"),
    ("abs", "-5.5", "5.5"), ("abs", "-3", "3"),
    ("eq", "10 0xA", "true"), ("eq", "10x 10x", "true"), ("ne", "1 2", "true"), ("lt", "a b", "true"),
    ("lt", "2 10", "true"), ("gt", "2.5 2", "true"), ("ge", "2 2", "true"), ("le", "3 2", "false"),
    ("eq", '"a b" \'a b\'', "true"),
    ("not", "true", "false"), ("not", "0", "true"), ("and", "true false", "false"), ("and", "", "true"),
    ("or", "false true", "true"), ("or", "", "false"), ("nand", "1 1", "false"), ("nor", "0 0", "true"),
    ("if", "true a b", "a"), ("if", "no a b", "b"), ("in", "foo bar foo", "true"), ("in", "x a b", "false"),
    ("in", '"a" a', "true"), ("first", "a b c", "a"), ("first", "", ""),
    ("length", "abcdef", "6"), ("length", "", "0"), ("unquote", '"a b" c', "a b c"),
    ("unquote", '"\\<41 42>"', "AB"),
    ("htons", "1", "256"), ("ntohs", "1536", "6"), ("htonl", "1", "16777216"), ("ntohl", "100663296", "6"),
    ("sprintf", '"%05x" 127', "0007f"), ("sprintf", '"%s-%d" hi 4', "hi-4"), ("sprintf", '"100%%"', "100%"),
    ("sprintf", '"%#o|%#o|%#o" 8 0 70000', "10|00|0210560"), ("sprintf", '"%#x|%#X" 0 8', "0|0X8"),
    ("sprintf", '"%+d|% d|%-4d|%.3d" 5 5 5 -1', "+5| 5|5   |-001"), ("sprintf", '"%hd|%hu" 70000 70000',
                                                                      "4464|4464"),
    ("sprintf", '"%5.2s|" abc', "   ab|"), ("sprintf", '"%08.3d" 5', "00000005"), ("sprintf", '"%.d" 5', "5"),
    ("sprintf", '"%s" "a b"', "a b"), ("random", "3 3", "3"),
])
def test_function_values(name: str, param: str, want: str) -> None:
    assert fn(name, param) == want


@pytest.mark.parametrize("name,param,message", [
    ("add", "1 x", "expected list of numbers"), ("mod", "7 0.5", "expected two numbers"),
    ("mod", "1", "expected two numbers"), ("eq", "1 2 3", "expected two numbers"),
    ("abs", "x", "expected one number"), ("not", "maybe", "syntax error"), ("and", "1 x", "syntax error"),
    ("if", "x a b", "syntax error"), ("htons", "x", "syntax error"),
    ("sprintf", '"%d"', "syntax error"), ("sprintf", '"%d" 1 2', "syntax error"),
    ("sprintf", '"%c" 65', "syntax error"), ("sprintf", '"%*d" 3 4', "syntax error"),
    ("sprintf", '"%u" -1', "syntax error"),
    ("random", "x", "N1: invalid number\nN2: required argument missing"),
    ("random", "1 2 3", "too many arguments"), ("random", "5 3", "bad N"),
    ("kill", "BOGUS 1", "bad SIGNO"), ("kill", "USR1 x", "bad PID"), ("cat", "", "bad FILE"),
    ("cat", "/nonexistent/file", "/nonexistent/file: No such file or directory"),
])
def test_function_errors(name: str, param: str, message: str) -> None:
    with pytest.raises(Exception) as info:
        fn(name, param)
    assert str(info.value) == message


def test_random_ranges() -> None:
    for _ in range(20):
        assert 2 <= int(fn("random", "2 4")) <= 4
    assert 0 <= int(fn("random")) < 1 << 31


def test_cat_catq_and_kill(tmp_path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"a\tb\n")
    assert fn("cat", str(p)) == "a\tb\n"
    assert fn("catq", str(p)) == '"a\\tb\\n"'
    assert fn("kill", "0") == ""          # signal 0 to nobody: nothing to do
    assert fn("kill", f"0 {os.getpid()}") == ""


def test_format_double() -> None:
    assert format_double(3.0) == "3"
    assert format_double(float("inf")) == "inf"
    assert format_double(1 / 3) == "0.333333333333"


# -- expansion -------------------------------------------------------------------------------

def look(values: dict[str, str]):
    return lambda name, kind: values.get(name)


def test_expand_forms() -> None:
    v = look({"x": 'a "b', "y": "Y", "f 1": "F", "n": "f 1"})
    assert expand("$x ${y} $(f 1) $zz", v) == 'a "b Y F $zz'
    assert expand('"$x"', v) == '"a \\"b"'
    assert expand("'$x'", v) == "'$x'"
    assert expand("$x", v, expand_quote=True) == '"a \\"b"'
    assert expand("$($n)", v) == "F"          # names are expanded first
    assert expand("$($q)", v) == "$($q)"      # unknown stays as written
    assert expand("a // $x\n", v) == "a // $x\n"
    assert expand("no dollars", v) == "no dollars"


def test_expand_empty_result_keeps_text() -> None:
    # Click returns the original text when every expansion produced nothing.
    assert expand("$e", look({"e": ""})) == "$e"
    assert expand("[$e]", look({"e": ""})) == "[]"


def test_resolve_call_messages() -> None:
    r = build("s :: Script(TYPE PASSIVE); c :: Counter; Idle -> c -> Idle").router
    assert r is not None
    s = r.find("s")
    eh = ErrorHandler(echo=False)
    assert resolve_call("nonexist", s, False, eh) is None
    assert resolve_call("x.y", s, False, eh) is None
    assert resolve_call("version 1", s, False, eh) is None
    assert resolve_call("s.add", s, True, eh) is None
    assert resolve_call("c.", s, False, eh) is None
    assert eh.lines == ["no 'nonexist' read handler", "no element named 'x'",
                        "read handler 'version' does not take parameters", "no 's.add' write handler",
                        "syntax error"]
    call = resolve_call("add 1 2", s, False, eh)
    assert call is not None and call.unparse() == "s.add 1 2" and call.call_read(eh) == "3"
    call = resolve_call(".version", s, False, eh)
    assert call is not None and call.name == "version"
    call = resolve_call("c.count", s, False, eh)
    assert call is not None and call.call_read(eh) == "0"


# -- instructions ------------------------------------------------------------------------------

def test_print_forms(capsys) -> None:
    out, err = out_of(capsys, """
        c :: Counter; Idle -> c -> Idle;
        Script(set x c.count, print c.count, print "c.count", print '"c.count"', print $x, print $($x),
               printn "no newline", print, printq c.count, printnq c.count, print "a" "b",
               print $(add 1 2), print "[$(add 1 2)]", stop)""")
    assert out == '0\nc.count\n"c.count"\nc.count\n0\nno newline\n0\n0a b\n3\n[3]\n'
    assert err == ""


def test_print_errors_suppress_newline(capsys) -> None:
    out, err = out_of(capsys, 'Script(print $(nonexist), print nonexist, print "ok", stop)')
    assert out == "$(nonexist)ok\n"
    assert err == ("While executing 'Script@1 :: Script':\n"
                   "  no 'nonexist' read handler\n  no 'nonexist' read handler\n")


def test_print_to_files(capsys, tmp_path) -> None:
    f, g = tmp_path / "f", tmp_path / "g"
    out, err = out_of(capsys, f"""Script(print >{f} "one", print >>{f} "two", printn >>{f} "three",
        save "four" {g}, append "five" {g}, print >- "to stdout", print >/nonexistent/x hi, stop)""")
    assert f.read_text() == "one\ntwo\nthree"
    assert g.read_text() == "four\nfive\n"
    assert out == "to stdout\n"
    assert "/nonexistent/x: No such file or directory" in err


def test_read_and_write(capsys) -> None:
    out, err = out_of(capsys, """
        s :: Script(TYPE PASSIVE, return $args);
        Script(read add 1 2, readq s.run "x y", write s.set v 5, print $(s.get v), print $?,
               write s.run, print $?, writeq s.set w "a b", print $(s.get w), write nonexist, stop)""")
    assert out == "5\n0\n0\na b\n"
    assert err == ("Script@2.add:\n3\ns.run:\nx y\n"
                   "While executing 'Script@2 :: Script':\n  no 'nonexist' write handler\n")


def test_set_init_export(capsys) -> None:
    r = run("""s :: Script(export e 1, exportq eq "a b", init i $(add 1 1), initq iq "c d",
                           set s x, setq sq "x y", set e 2, print "$e $eq $i $iq $s $sq", stop)""",
            simtime=True)
    assert capsys.readouterr().out == "2 a b 2 c d x x y\n"
    assert r.read("s.e") == "2"
    assert r.read("s.eq") == "a b"
    assert r.router.find("s").variables()["i"] == "2"


def test_set_keeps_quotes_setq_removes(capsys) -> None:
    out, _ = out_of(capsys, """c :: Counter; Idle -> c -> Idle;
        Script(set x $(c.count), print $x, set x "$(c.count)", print '$x', setq x "$(c.count)", print $x, stop)""")
    assert out == '0\n$x\n0\n'


def test_goto_label_loop(capsys) -> None:
    out, err = out_of(capsys, """Script(set x 0, label l, print $x, set x $(add $x 1),
                                         goto l $(lt $x 3), goto done $(eq 1 0), print mid,
                                         label done, goto l2 maybe, label l2, stop)""")
    assert out == "0\n1\n2\n"
    assert "bad condition 'maybe'" in err
    assert "no 'mid' read handler" in err


def test_loop_instruction(capsys) -> None:
    out, _ = out_of(capsys, """Script(init n 0, set n $(add $n 1), print $n, goto done $(ge $n 3), loop,
                                         label done, stop)""")
    assert out == "1\n2\n3\n"


def test_goto_special_targets(capsys) -> None:
    out, err = out_of(capsys, """
        Script(goto end, print "not1"); Script(goto exit $(eq 1 1), print "not2");
        Script(goto error, print "not3"); Script(goto begin $(eq 1 0), print "yes");
        Script(wait 1, stop)""")
    assert out == "yes\n"
    assert err == ""


def test_goto_stop_does_not_stop_router(capsys) -> None:
    # As in Click, only the 'stop' instruction lowers the runcount.
    out, _ = out_of(capsys, 'Script(goto stop, print "no"); Script(wait 1, print "after", stop)')
    assert out == "after\n"


def test_end_exit_error_return(capsys) -> None:
    out, err = out_of(capsys, """
        a :: Script(TYPE PASSIVE, return "x y"); b :: Script(TYPE PASSIVE, returnq "x y");
        c :: Script(TYPE PASSIVE, error "bad" thing, return no); d :: Script(TYPE PASSIVE, errorq "q q");
        e :: Script(TYPE PASSIVE, end, return no); f :: Script(TYPE PASSIVE, exit);
        Script(print $(a.run), print $(b.run), print $(c.run), print $(d.run), print "[$(e.run)]",
               print "[$(f.run)]", stop)""")
    assert out == '"x y"\nx y\n[]\n[]\n'
    assert err == 'While executing \'Script@7 :: Script\':\n  "bad" thing\n  q q\n'


def test_too_many_jumps(capsys) -> None:
    out, err = out_of(capsys, "s0 :: Script(label a, goto a); s1 :: Script(wait 1, stop)")
    assert err == "s0 :: Script: too many jumps, giving up\n"


def test_pause_and_step_handler(capsys) -> None:
    out, err = out_of(capsys, """
        s1 :: Script(pause, print "a", pause 2, print "b", wait 10, print "c");
        Script(write s1.step, write s1.step, write s1.step 2, write s1.step, wait 0.01,
               write s1.step x, stop)""")
    assert out == "a\nb\nc\n"
    assert "syntax error" in err


def test_wait_variants(capsys) -> None:
    out, _ = out_of(capsys, """
        s :: Script(wait_time 0.5, print "t", wait_step, print "s", wait_stop, print "s2", wait_for 1ms,
                    print "f", wait 2, print "w");
        Script(wait 1, write s.step, write s.step, wait 1, write s.step, wait 1, stop)""")
    assert out == "t\ns\ns2\nf\nw\n"


def test_wait_time_is_time(capsys) -> None:
    out, _ = out_of(capsys, "Script(set a $(now), wait 0.5s, print $(sub $(now) $a), stop)")
    assert 0.5 <= float(out) < 0.51


def test_goto_handler(capsys) -> None:
    out, err = out_of(capsys, """
        s :: Script(TYPE PASSIVE, print "start", label here, print "here");
        Script(write s.goto here, write s.goto nowhere, stop)""")
    assert out == "here\n"
    assert "jump to nonexistent label" in err


def test_special_variables(capsys) -> None:
    out, _ = out_of(capsys, """
        s :: Script(TYPE PASSIVE, print "[$args|$#|$0|$1|$2|$3|$write]", return $2);
        Script(print $(s.run a "b c" d), write s.run x y, print $?, print $$, stop)""")
    lines = out.split("\n")
    assert lines[0] == '[a "b c" d|3|run|a|"b c"|d|false]'
    assert lines[1] == '"b c"'
    assert lines[2] == "[x y|2|run|x|y||true]"
    assert lines[3] == "0"
    assert lines[4] == str(os.getpid())


def test_var_handlers(capsys) -> None:
    out, err = out_of(capsys, """
        s :: Script(TYPE PASSIVE, return $(shift));
        Script(write set foovar foo bar baz, print $(shift foovar), print $(shift foovar), print $(get foovar),
               print $(s.run p q), print $(get nope), print $(get a b), print $(get), stop)""")
    assert out.startswith("foo\nbar\nbaz\np\n")
    assert "undefined variable 'nope'" in err
    assert "too many arguments" in err
    assert "no variable" in err


# -- types ---------------------------------------------------------------------------------------

def test_passive_run_handler() -> None:
    r = build("s :: Script(TYPE PASSIVE, return $(add $1 $2))").router
    assert r is not None
    assert r.call_read("s.run 3 4", ErrorHandler(echo=False)) == "7"


def test_packet_script_ports(capsys) -> None:
    out, _ = out_of(capsys, """
        InfiniteSource(LIMIT 10, STOP true)
          -> sy :: Script(TYPE PACKET, init i 0, set j $i, set i $(add $i 1), set i $(if $(eq $i 3) 0 $i),
                          return $j)
          -> c0 :: Counter -> Discard;
        sy[1] -> c1 :: Counter -> Discard;
        DriverManager(pause, print c0.count, print c1.count, print $(sy.get input))""")
    assert out == "4\n3\n0\n"


def test_packet_end_and_exit(capsys) -> None:
    out, _ = out_of(capsys, """
        InfiniteSource(LIMIT 4, STOP true) -> Tee -> Script(TYPE PACKET, exit) -> a :: Counter -> Discard;
        Idle -> Script -> b :: Counter -> Discard;
        InfiniteSource(LIMIT 3) -> Script(TYPE PACKET, end) -> c :: Counter -> Discard;
        DriverManager(pause, print a.count, print b.count, print c.count)""")
    assert out == "0\n0\n3\n"


def test_packet_pull(capsys) -> None:
    out, _ = out_of(capsys, """
        InfiniteSource(LIMIT 6, STOP true) -> q :: Queue
          -> s :: Script(TYPE PACKET, return $(if $(eq $(c1.count) 2) 0 1))
          -> u :: Unqueue -> c0 :: Counter -> Discard;
        s[1] -> c1 :: Counter -> Discard;
        DriverManager(pause, wait 0.1, print c0.count, print c1.count)""")
    assert out == "4\n2\n"


def test_proxy_script(capsys) -> None:
    out, err = out_of(capsys, """
        p :: Script(TYPE PROXY, goto nota $(ne $0 a), returnq "you called a", label nota,
                    goto notb $(ne $0 b), returnq "you called b", label notb, error bad handler);
        Script(print $(p.a), print $(p.b), print $(p.c), write p.b 1, print $?, write p.c, print $?, stop)""")
    assert out == "you called a\nyou called b\n0\n-1\n"
    assert "bad handler" in err


def test_driver_manager_intercepts_stop(capsys) -> None:
    out, _ = out_of(capsys, """
        DriverManager(print "start", pause, print "p1", wait 0.01, print "w", pause, print "p2");
        Script(write stop, wait 0.05, write stop)""")
    assert out == "start\np1\nw\np2\n"


def test_driver_manager_defaults(capsys) -> None:
    out, _ = out_of(capsys, """InfiniteSource(LIMIT 5, STOP true) -> c :: Counter -> Discard;
                               DriverManager(pause, wait 0.1s, print c.count)""")
    assert out == "5\n"
    out, _ = out_of(capsys, "DriverManager(print \"a\", end, print \"b\"); Script(wait 0.1, print \"x\", stop)")
    assert out == "a\n"      # end leaves the runcount at 0: the router stops


def test_type_driver_script(capsys) -> None:
    out, _ = out_of(capsys, 'Script(TYPE DRIVER, wait 0.01, print "a", stop, print "b")')
    assert out == "a\n"


def test_signal_scripts_in_process(capsys) -> None:
    out, _ = out_of(capsys, """
        Script(TYPE SIGNAL USR2, print "got", end);
        Script(print "K", set y $(kill USR2 $$), wait 0.01, print "K2", set y $(kill USR2 $$),
               wait 0.01, stop)""", simtime=False)
    assert out == "K\ngot\nK2\ngot\n"
    assert signal.getsignal(signal.SIGUSR2) is not None


def test_signal_exit_then_default_action() -> None:
    cfg = """Script(print "K 1", set y $(kill USR1 $$), wait 0.00001s, print "K 2",
                    set y $(kill USR1 $$), wait 0.00001s, stop)
             Script(TYPE SIGNAL USR1, print "got USR1", exit)"""
    p = click("-e", cfg)
    assert p.stdout == "K 1\ngot USR1\nK 2\n"
    assert p.returncode == -signal.SIGUSR1


# -- configuration errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("config,message", [
    ("Script(TYPE BOGUS)", "bad TYPE"),
    ("Script(TYPE SIGNAL FOO)", "bad signal number"),
    ("Script(TYPE SIGNAL)", "bad signal number"),
    ("Script(TYPE PASSIVE x)", "bad TYPE"),
    ("DriverManager; Script(TYPE DRIVER)", "router has more than one driver script"),
    ("Idle -> Script(TYPE PASSIVE) -> Idle", "ports allowed only on PACKET scripts"),
    ("Script(TYPE PACKET) -> Idle", "PACKET script must have inputs"),
    ("Script(type ACTIVE)", "syntax error at 'type'"),
])
def test_configure_errors(config: str, message: str) -> None:
    r = build(config)
    assert r.router is None
    assert message in r.errors


def test_configure_syntax_errors() -> None:
    r = build("Script(foo, goto nowhere, label, label a b, wait x, pause x, set x, end x, stop x, "
              "error x y, loop z, return, init, export y)")
    assert r.router is None
    lines = [x.strip() for x in r.errors.split("\n")]
    assert lines[1:11] == ["syntax error at 'foo'", "syntax error at 'label'", "syntax error at 'label'",
                           "syntax error at 'pause'", "syntax error at 'set'", "syntax error at 'end'",
                           "syntax error at 'stop'", "syntax error at 'loop'", "syntax error at 'init'",
                           "no such label 'nowhere'"]


def test_handlers_list_and_types() -> None:
    r = build("s :: Script(TYPE PASSIVE, export v 1); d :: DriverManager").router
    assert r is not None
    names = r.handlers_string(r.find("s")).split("\n")
    assert "run\trw+" in names and "add\tr+" in names and "v\tr" in names and "step\tw" in names
    assert not any(n.startswith("kill") for n in names)       # private, as in Click
    assert r.find("s").script_type == "PASSIVE"
    assert r.find("d").script_type == "DRIVER"
    assert r.attachments["Script"] is r.find("d")
