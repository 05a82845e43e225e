"""Scripted faults of the fake Hub: rules that pick requests and say what goes wrong with them.

Rules are replaced at runtime (POST /_fake/faults) while handler threads consult them, so every
read and counter update holds FaultSet's lock. Rule format and fault list: README.md, "Faults".
Knows nothing of HTTP beyond a request's host name, method and decoded path.
"""
import re
import threading

REQUIRED = object()
NUMBER = (int, float)
# fault -> {parameter: (accepted types, default)}
FAULTS = {
    "status": {"status": (int, REQUIRED), "retry_after": ((int, str, type(None)), None),
               "ratelimit": ((dict, type(None)), None)},
    "reset": {"at_byte": (int, 0)},
    "truncate": {"at_byte": (int, 0)},
    "stall": {"at_byte": (int, 0), "seconds": (NUMBER, 30.0)},
    "trickle": {"rate": (NUMBER, REQUIRED)},
    "corrupt": {"at_byte": (int, 0), "length": (int, 1)},
    "ignore_range": {},
    "expire": {"after": (int, 0)},
    "gzip": {},
    "rename": {"from": (str, REQUIRED), "to": (str, REQUIRED)},
}
# Faults that decide how the body bytes travel; the server applies at most one per reply.
DELIVERY = frozenset({"reset", "truncate", "stall", "trickle"})
HOSTS = ("api", "cdn", "cas", "any")


class RuleError(ValueError):
    pass


class Rule:
    """One rule. Invariant: fired <= matched - skip when matched > skip, and fired <= count."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise RuleError(f"a rule is a JSON object, not {spec!r}")
        self.fault = spec.get("fault")
        if self.fault not in FAULTS:
            raise RuleError(f"unknown fault {self.fault!r}; known: {sorted(FAULTS)}")
        params = FAULTS[self.fault]
        unknown = set(spec) - {"host", "method", "path_re", "fault", "skip", "count"} - set(params)
        if unknown:
            raise RuleError(f"{self.fault}: unknown keys {sorted(unknown)}")
        self.spec = dict(spec)
        self.host = spec.get("host", "any")
        if self.host not in HOSTS:
            raise RuleError(f"host must be one of {HOSTS}")
        self.method = spec["method"].upper() if spec.get("method") else None
        try:
            self.path_re = re.compile(spec["path_re"]) if spec.get("path_re") else None
        except (re.error, TypeError) as e:
            raise RuleError(f"bad path_re: {e}") from None
        self.skip = _typed(spec, "skip", int, 0)
        self.count = _typed(spec, "count", (int, type(None)), None)
        self.params = {}
        for name, (types, default) in params.items():
            if default is REQUIRED and name not in spec:
                raise RuleError(f"{self.fault} needs {name!r}")
            self.params[name] = _typed(spec, name, types, default)
        self.matched = 0
        self.fired = 0

    def selects(self, host, method, path):
        return ((self.host == "any" or self.host == host) and
                (self.method is None or self.method == method) and
                (self.path_re is None or self.path_re.search(path) is not None))

    def describe(self):
        return dict(self.spec, matched=self.matched, fired=self.fired)


def _typed(spec, name, types, default):
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, types):  # bool is an int: refuse it
        raise RuleError(f"{name}: bad value {value!r}")
    return value


class FaultSet:
    """The active rules, plus per-signed-URL use counts for the `expire` fault."""

    def __init__(self, specs=()):
        self._lock = threading.Lock()
        self._rules = self.build(specs)  # under _lock
        self._url_uses = {}  # signature -> uses since issued; under _lock

    @staticmethod
    def build(specs):
        if not isinstance(specs, list):
            raise RuleError("the rule set is a JSON list")
        return [Rule(s) for s in specs]

    def replace(self, specs):
        """Swaps in a new rule set (all rules valid, or nothing changes). Raises RuleError."""
        rules = self.build(specs)
        with self._lock:
            self._rules = rules

    def reset(self):
        with self._lock:
            self._rules = []
            self._url_uses = {}

    def describe(self):
        with self._lock:
            return [r.describe() for r in self._rules]

    def take(self, names, host, method, path, applies=None):
        """The first rule for one of the faults `names` that selects this request, that applies
        (`applies(rule)`, when given) and is due (past its `skip`, within its `count`); it counts
        as fired. Rules examined before it count the request as matched. None if none is due."""
        with self._lock:
            for rule in self._rules:
                if rule.fault not in names or not rule.selects(host, method, path):
                    continue
                if applies is not None and not applies(rule):
                    continue
                rule.matched += 1
                if rule.matched > rule.skip and (rule.count is None or rule.fired < rule.count):
                    rule.fired += 1
                    return rule
        return None

    def url_issued(self, signature):
        """A signed URL was handed out: its uses count from zero."""
        with self._lock:
            self._url_uses[signature] = 0

    def url_used(self, signature):
        """Counts one use of a signed URL; returns its uses so far, this one included."""
        with self._lock:
            uses = self._url_uses.get(signature, 0) + 1
            self._url_uses[signature] = uses
            return uses
