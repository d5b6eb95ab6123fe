"""Secret masking for task logs: built-in rules, per-task-type rules, and the run's own secrets.

DolphinScheduler masks task logs with one logback converter (``SensitiveDataConverter``, reference §7):
one alternation of every pattern, shared by every task type, and plugins add their patterns to it at
run time. One bad pattern then breaks everyone's log. Porpoise keeps rule sets per task type:

* :data:`DEFAULT_RULES`, built in and applied to every type: DS's datasource-password JSON pattern,
  ``password=…`` assignments, other secret-named assignments (``token=…``, ``api_key=…``), URLs and
  JDBC URLs with credentials, ``Authorization`` headers, DataX's ``post jdbc info:`` echo and the
  Kubernetes ``configYaml`` (the DS plugin patterns, §7);
* custom regexes from settings (``log_mask_rules``), keyed by task type (``"*"``: every type). A type's
  custom rules are compiled once, into that type's :class:`RuleSet` only, so one type's rules can't
  touch another type's log;
* the exact values the run resolved as secret (:class:`Masker`): a SQL task's datasource password, and
  every parameter whose *name* says it is secret (DS has no secret parameter type, so the name decides:
  :data:`DEFAULT_SECRET_PARAM_PATTERN`, configurable as ``log_secret_param_pattern``). These are masked
  even with no rule at all.

**What is masked.** When a rule has named groups whose names start with ``secret`` (``secret``,
``secret1``...), only those groups are masked, so ``password=hunter2`` logs as ``password=******``; a
rule without such groups masks its whole match (DS's DataX rule ``(?<=post jdbc info:).*``). Every
mask is the fixed ``******``: DS writes one ``*`` per character, which tells a reader the length of the
secret; a fixed mask does not, and is what :meth:`ConnectionInfo.mask` already writes.

**Line by line, on a stream.** Rules apply to one line at a time (without its line end, so no rule
can eat a newline). :meth:`Masker.feed` takes output as it arrives, in any pieces, and returns only
complete lines, masked; the unfinished line waits for its newline, so a secret split across writes is
still seen whole. A line longer than :data:`MAX_PENDING_LINE` is masked in pieces cut at whitespace
when possible (a limitation: a secret spanning such a cut in a megabyte-long line could escape).
Bytes that are not UTF-8 pass through unchanged (``surrogateescape``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

MASK = "******"
MAX_PENDING_LINE = 1024 * 1024  # an unfinished line longer than this is masked and written in pieces
MIN_PARAM_SECRET_CHARS = 4  # a secret-named parameter with a shorter value is not masked (see below)
ALL_TYPES = "*"  # log_mask_rules key whose rules apply to every task type

# A parameter is secret when its name (camelCase split to snake_case, lower-cased) *ends* with one of
# these words: db_password, apiToken, secret_key, api_key; but not password_file or token_ttl, whose
# values are not secrets and would be masked all over the log.
DEFAULT_SECRET_PARAM_PATTERN = (
    r"(?:password|passwd|pwd|passphrase|secret|token|credentials?|(?:^|[._\-]|api|access|private|secret)key)$"
)
# Values that are never worth masking everywhere: a flag like use_password=true is not a secret.
_NOT_SECRET_VALUES = {"true", "false", "yes", "no", "null", "none"}


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    # Lower-case strings of which a text must hold one for the rule to match it at all: a cheap scan
    # that spares the regex most of a storm's output. Empty: always run the regex (custom rules).
    hints: tuple[str, ...] = ()

    @property
    def secret_groups(self) -> tuple[str, ...]:
        return tuple(g for g in self.pattern.groupindex if g.startswith("secret"))


def compile_rule(name: str, regex: str, hints: tuple[str, ...] = ()) -> Rule:
    """Compile one rule (MULTILINE, so ``^``/``$`` are line anchors). Raises ValueError on a bad regex."""
    try:
        return Rule(name, re.compile(regex, re.MULTILINE), hints)
    except re.error as e:
        raise ValueError(f"log mask rule {name!r} is not a valid regular expression: {e}: {regex!r}") from None


# A value: double-quoted, single-quoted, or bare up to whitespace or a separator (&;,) or a quote.
_VALUE = r"""(?:"(?P<secret>[^"\n]*)"|'(?P<secret1>[^'\n]*)'|(?P<secret2>[^\s&;,'"]+))"""

# Every default pattern starts at its keyword (no leading [\w.-]*, which would make the regex try each
# position of the text): only the value is masked, so what precedes the keyword does not matter.
DEFAULT_RULES: tuple[Rule, ...] = (
    # DS DataSourceConstants.DATASOURCE_PASSWORD_REGEX: "password":"…" in JSON, in escaped JSON
    # (\"password\":\"…\"), and password='…'.
    compile_rule(
        "datasource-password",
        r"""(?i)pass(?:word|wd)(?:"\s*:\s*"(?P<secret>(?:[^"\\\n]|\\.)*)"""
        r"""|\\+"\s*:\s*\\+"(?P<secret1>.*?)(?=\\+"|$)"""
        r"""|\s*=\s*'(?P<secret2>[^'\n]*)')""",
        ("pass",),
    ),
    # password=…, db.password: …, --password "…", PGPASSWORD=…, pwd=… (query strings, JDBC properties, CLIs).
    compile_rule("password-assignment", r"(?i)(?:(?:password|passwd|pwd)\b\s*[=:]|(?<=--)password\s)\s*" + _VALUE,
                 ("pass", "pwd")),
    # token=…, secret=…, api_key=…, access_key=…, client_secret=… (only with "=": prose says "token: …").
    compile_rule(
        "secret-assignment",
        r"(?i)(?:secret|token|api[_-]?key|access[_-]?key|private[_-]?key)\b\s*=\s*" + _VALUE,
        ("secret", "token", "key"),
    ),
    # scheme://user:password@host, including jdbc:mysql://, postgresql+psycopg://, https://.
    compile_rule("url-credentials", r"""://[^/\s:@'"]*:(?P<secret>[^@\s/'"]+)@""", ("://",)),
    # Oracle's jdbc:oracle:thin:user/password@host.
    compile_rule("jdbc-oracle-credentials", r"""(?i)jdbc:oracle:[a-z]+:[^/@\s:'"]+/(?P<secret>[^@\s'"]+)@""",
                 ("jdbc:oracle",)),
    # Authorization / Proxy-Authorization: as a header line, in JSON, in curl -H '…': the scheme stays.
    compile_rule(
        "authorization-header",
        r"""(?i)authorization\b["']?\s*[:=]\s*["']?"""
        r"""(?:(?:basic|bearer|digest|token|negotiate|ntlm|aws4-hmac-sha256)\s+)?(?P<secret>[^"'\r\n]+)""",
        ("authorization",),
    ),
    # DataX (DS DataxTask's addMaskPattern): everything after "post jdbc info:".
    compile_rule("datax-jdbc-echo", r"(?<=post jdbc info:).*", ("post jdbc info:",)),
    # Kubernetes (DS K8S_CONFIG_REGEX): the value of "configYaml" (a kubeconfig with its credentials).
    compile_rule("k8s-config-yaml", r"""(?i)configYaml\\*"\s*:\s*\\*"(?P<secret>(?:[^"\\\n]|\\.)*)""",
                 ("configyaml",)),
)


def _may_match(rule: Rule, text: str, lower: str) -> bool:
    if rule.hints and not any(h in lower for h in rule.hints):
        return False
    return rule.pattern.search(text) is not None


class RuleSet:
    """The compiled rules of one task type: the defaults plus that type's custom rules."""

    def __init__(self, task_type: str, rules: Sequence[Rule]) -> None:
        self.task_type = task_type
        self.rules = tuple(rules)

    def spans(self, line: str, rules: Iterable[Rule] | None = None) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for rule in self.rules if rules is None else rules:
            groups = rule.secret_groups
            for m in rule.pattern.finditer(line):
                if groups:
                    for g in groups:
                        start, end = m.span(g)
                        if start >= 0 and end > start:
                            out.append((start, end))
                elif m.end() > m.start():
                    out.append(m.span())
        return out

    def mask_text(self, text: str) -> str:
        """``text`` with every rule applied, line by line."""
        return _mask_lines(text, self, None)

    def mask_bytes(self, data: bytes) -> bytes:
        text = data.decode("utf-8", "surrogateescape")
        masked = self.mask_text(text)
        return data if masked == text else masked.encode("utf-8", "surrogateescape")


def _replace(line: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return line
    spans.sort()
    parts: list[str] = []
    pos = 0
    cur_start, cur_end = spans[0]
    for start, end in spans[1:]:
        if start <= cur_end:
            cur_end = max(cur_end, end)
            continue
        parts += [line[pos:cur_start], MASK]
        pos = cur_end
        cur_start, cur_end = start, end
    parts += [line[pos:cur_start], MASK, line[cur_end:]]
    return "".join(parts)


def _mask_lines(text: str, rules: RuleSet, secrets: re.Pattern[str] | None, literals: Iterable[str] = ()) -> str:
    """Mask ``text`` (any number of lines) line by line. The whole text is searched first, so a block of
    lines that no rule can touch (the common case) costs one scan per rule and no splitting."""
    lower = text.lower()
    hit = [r for r in rules.rules if _may_match(r, text, lower)]
    secret_hit = secrets is not None and any(s in text for s in literals)
    if not hit and not secret_hit:
        return text
    out: list[str] = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        end = line[len(body) :]
        spans = rules.spans(body, hit)
        if secret_hit and secrets is not None:
            spans += [m.span() for m in secrets.finditer(body) if m.end() > m.start()]
        out.append(_replace(body, spans) + end)
    return "".join(out)


@lru_cache(maxsize=256)
def _compiled(task_type: str, custom: tuple[tuple[str, str], ...]) -> RuleSet:
    rules = list(DEFAULT_RULES) + [compile_rule(name, regex) for name, regex in custom]
    return RuleSet(task_type, rules)


def _custom_for(task_type: str, configured: Mapping[str, Sequence[str]]) -> tuple[tuple[str, str], ...]:
    wanted = task_type.upper()
    out: list[tuple[str, str]] = []
    for key in sorted(configured, key=lambda k: (k != ALL_TYPES, k)):  # "*" rules first, then the type's
        if key == ALL_TYPES or key.upper() == wanted:
            out += [(f"{key}[{i}]", regex) for i, regex in enumerate(configured[key])]
    return tuple(out)


def rules_for(task_type: str, configured: Mapping[str, Sequence[str]] | None = None) -> RuleSet:
    """The rule set of ``task_type``: the defaults, ``configured["*"]`` and ``configured[task_type]``
    (keys are matched case-insensitively). Compiled once per type and configuration."""
    return _compiled(task_type.upper(), _custom_for(task_type, configured or {}))


def validate_rules(configured: Mapping[str, Sequence[str]]) -> None:
    """Compile every configured rule; raise ValueError naming the first bad one (used by Settings)."""
    for key, regexes in configured.items():
        for i, regex in enumerate(regexes):
            compile_rule(f"{key}[{i}]", regex)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def is_secret_name(name: str, pattern: str = DEFAULT_SECRET_PARAM_PATTERN) -> bool:
    """Whether a parameter (or header) named ``name`` holds a secret, by its name."""
    return re.search(pattern, _snake(name), re.IGNORECASE) is not None


def secret_params(params: Mapping[str, str], pattern: str = DEFAULT_SECRET_PARAM_PATTERN) -> dict[str, str]:
    """The resolved parameters whose name says they are secret (and whose value is worth masking)."""
    return {k: v for k, v in params.items() if is_secret_name(k, pattern)}


_CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie"}


def worth_masking(value: str) -> bool:
    """A secret-named value long enough to mask everywhere (not "id", not "true")."""
    return len(value) >= MIN_PARAM_SECRET_CHARS and value.lower() not in _NOT_SECRET_VALUES


def http_secrets(pairs: Iterable[tuple[str, str]], pattern: str = DEFAULT_SECRET_PARAM_PATTERN) -> list[str]:
    """The values of HTTP headers or query parameters that are credentials: ``Authorization`` and
    cookies (whole, and the credential after the scheme), and secret-named ones (``X-Api-Key``,
    ``access_token``)."""
    out: list[str] = []
    for name, value in pairs:
        if name.strip().lower() in _CREDENTIAL_HEADERS:
            out.append(value)
            scheme, _, credential = value.strip().partition(" ")
            if credential.strip():
                out.append(credential.strip())
        elif is_secret_name(name, pattern) and worth_masking(value):
            out.append(value)
    return [v for v in out if v]


def _variants(value: str) -> set[str]:
    """The forms a secret takes in a log: as is, URL-encoded (both ways), JSON-escaped."""
    out = {value, quote(value, safe=""), quote(value)}
    out.add(json.dumps(value, ensure_ascii=False)[1:-1])
    out.add(json.dumps(value)[1:-1])
    return {v for v in out if v}


class Masker:
    """Masks one task instance's log: its type's rules, plus the exact secrets the run resolved.

    Feed it output in any pieces (:meth:`feed`); it hands back masked complete lines and keeps the
    unfinished one until its newline (or :meth:`flush`). :meth:`mask` masks a complete text at once.
    """

    def __init__(self, rules: RuleSet | None = None, secrets: Iterable[str] = ()) -> None:
        self.rules = rules if rules is not None else rules_for("")
        self._secrets: set[str] = set()
        self._secret_re: re.Pattern[str] | None = None
        self._pending = b""
        self.skipped_params: list[str] = []  # secret-named params too short to mask (for a log note)
        for s in secrets:
            self.add_secret(s)

    @classmethod
    def for_task(
        cls,
        task_type: str,
        params: Mapping[str, str] | None = None,
        *,
        configured: Mapping[str, Sequence[str]] | None = None,
        secret_param_pattern: str = DEFAULT_SECRET_PARAM_PATTERN,
    ) -> Masker:
        """The masker of one task instance: ``task_type``'s rule set, and the value of every resolved
        parameter whose name is secret (values under 4 characters and true/false/null excepted: a
        parameter ``key=id`` must not turn every "id" in the log into ``******``)."""
        masker = cls(rules_for(task_type, configured))
        for name, value in secret_params(params or {}, secret_param_pattern).items():
            if not worth_masking(value):
                if value:
                    masker.skipped_params.append(name)
                continue
            masker.add_secret(value)
        return masker

    def add_secret(self, value: str | None) -> None:
        """Mask ``value`` (and its URL-encoded and JSON-escaped forms) wherever it appears, from now on.
        Any non-empty value counts: it was resolved as a secret (a datasource password, say)."""
        if not value:
            return
        new = _variants(value) - self._secrets
        if not new:
            return
        self._secrets |= new
        ordered = sorted(self._secrets, key=len, reverse=True)  # the longest form first
        self._secret_re = re.compile("|".join(re.escape(s) for s in ordered))

    @property
    def has_secrets(self) -> bool:
        return bool(self._secrets)

    def mask(self, text: str) -> str:
        return _mask_lines(text, self.rules, self._secret_re, self._secrets)

    def mask_bytes(self, data: bytes) -> bytes:
        if not data:
            return data
        text = data.decode("utf-8", "surrogateescape")
        masked = self.mask(text)
        return data if masked is text else masked.encode("utf-8", "surrogateescape")

    # -- streaming -----------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line held back, waiting for its newline."""
        return len(self._pending)

    def feed(self, data: bytes) -> bytes:
        """Take output as it arrives; return the complete lines in it (with what was held), masked."""
        if not data:
            return b""
        buf = self._pending + data
        cut = buf.rfind(b"\n") + 1
        while len(buf) - cut > MAX_PENDING_LINE:  # an endless line: mask it in pieces
            cut = _piece_end(buf, cut)
        self._pending = buf[cut:]
        return self.mask_bytes(buf[:cut])

    def flush(self) -> bytes:
        """The unfinished line, masked as it is (end of output, or a note must be written after it)."""
        rest, self._pending = self._pending, b""
        return self.mask_bytes(rest)


def _piece_end(buf: bytes, start: int) -> int:
    """Where to cut a piece of at most MAX_PENDING_LINE bytes off an overlong line starting at
    ``start``: after the last whitespace in its second half, so a secret is unlikely to be split."""
    limit = start + MAX_PENDING_LINE
    best = max(buf.rfind(b" ", start + MAX_PENDING_LINE // 2, limit), buf.rfind(b"\t", start + MAX_PENDING_LINE // 2,
                                                                                   limit))
    return best + 1 if best >= 0 else limit
