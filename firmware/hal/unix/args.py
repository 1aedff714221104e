# The virtual badge's command line, parsed once at boot (app.start drops this module afterwards: its code and
# strings would otherwise stay on the heap for the whole run).
import sys


def parse_presses(spec):
    """"start_ms:dur_ms,..." -> tuple of (start_ms, dur_ms)."""
    out = []
    if spec:
        for item in spec.split(","):
            a, b = item.split(":")
            out.append((int(a), int(b)))
    return tuple(out)


# Command-line options in one string (a qstr per option name would cost heap); main() returns their values in
# this order: config, udp, samples, tick-us, seconds, press, led, label, chips.
OPTIONS = "--config --udp --samples --tick-us --seconds --press --led --label --chips".split()


def main(argv):
    """micropython main.py [--config PATH] [--udp HOST:PORT] [--samples FILE] [--tick-us N] [--seconds S]
    [--press START_MS:DUR_MS,...] [--led HOST:PORT] [--label NAME] [--chips 0|1], run from the badge's root
    directory (config.json and the badge's state live there). Returns the values in OPTIONS order."""
    values = ["config.json", None, None, "15625", "0", "", None, "badge", "0"]
    i = 0
    while i < len(argv):
        if argv[i] not in OPTIONS or i + 1 >= len(argv):
            print("usage: main.py " + " ".join("[" + o + " X]" for o in OPTIONS))
            sys.exit(2)
        values[OPTIONS.index(argv[i])] = argv[i + 1]
        i += 2
    return values
