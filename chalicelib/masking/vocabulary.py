"""What counts as a credential: key words, value shapes and provider token formats.

Coverage follows the families well-known secret scanners maintain (gitleaks' rule set,
detect-secrets' keyword and provider plugins), grouped under the eight pattern names policies
use. A rule added to a family is on for every policy that does not except that family.

Every rule here must contain at least one of its family's ``TRIGGERS`` (lower-cased ASCII):
the scanner only looks closely at text holding a trigger, so a rule without one never fires.
"""

from __future__ import annotations

import re

_KEY_PREFIXES = (
    "api|access|private|priv|client|service|account|db|database|master|encryption|signing"
    "|session|auth|app|tls|ssh"
)
# Words that make a key a credential's key (DB_PASSWORD, mysql_pwd, clientSecret, conn_str).
# ``pass`` and ``auth`` only count as a word of their own (db_pass, basicAuth, AUTH), not
# inside bypass, compass, author or oauth.
# Every alternative starts with a letter (lookbehinds come after it) so the regex engine can
# skip quickly to the positions where one could start.
CREDENTIAL_KEY_WORDS = (
    r"passw(?:or)?d|passphrase|passcode|pwd|secret|token|credential|c(?<![a-z]c)reds?(?![a-z])"
    rf"|(?:{_KEY_PREFIXES})[_.-]?key"
    r"|conn(?:ection)?[_.-]?str(?:ing)?|connection[_.-]?uri|contrasena"
    r"|p(?<![a-z]p)ass(?-i:(?![a-z]))|(?-i:P(?<=[a-z]P)(?:ass|ASS)(?![a-z]))"
    r"|a(?<![a-z]a)uth(?-i:(?![a-z]))|(?-i:A(?<=[a-z]A)(?:uth|UTH)(?![a-z]))"
)
# A key naming *where* a credential is (secretName, secretKeyRef, passwordFile) or something
# about it (tokenExpirationSeconds) holds no credential itself.
_REFERENCE_SUFFIX = (
    r"(?:name|names|ref|refs|reference|file|path|dir|type|kind|ttl|seconds|namespace|policy"
    r"|mode|length|version|url|uri|endpoint|expiry|expiration|timeout|enabled|required)"
)
_KEY = re.compile(rf"(?i:{CREDENTIAL_KEY_WORDS})", re.ASCII)
_REFERENCE = re.compile(rf"(?i:{_REFERENCE_SUFFIX})$", re.ASCII)


def is_credential_key(key: str) -> bool:
    """Whether a value stored under ``key`` (a ConfigMap key, an env name, a field) is a
    credential by its name alone."""
    match = _KEY.search(key)
    return match is not None and not _REFERENCE.search(key, match.end())


# ---------------------------------------------------------------------------------------------
# Text rules. Every rule in RULES starts exactly where one of its family's triggers starts: the
# scanner tries them only there. Quantifiers are possessive, bounded or anchored so a hostile
# multi-megabyte line costs linear time. A quoted value whose closing quote is missing is masked
# to the line's end.


def _value(tag: str) -> str:
    """A value after ``key=``: quoted (also with JSON-escaped quotes) or bare."""
    return (
        rf"""(?:\\++"(?P<secret_{tag}edq>(?:[^"\\\r\n]++|\\(?!\\*+")[^\r\n]?)*+)"""
        rf"""|"(?P<secret_{tag}dq>[^"\r\n]*+)"?"""
        rf"""|'(?P<secret_{tag}sq>[^'\r\n]*+)'?"""
        rf"""|(?P<secret_{tag}bare>[^\s"',;&]++))"""
    )


_QUOTED_KEY_END = r"""(?:\\*+["'])?"""
_SEPARATOR = r"[ \t]*+(?:=>|:=|[:=])"
_KEYWORD = rf"(?i:{CREDENTIAL_KEY_WORDS})"
_AWS_SECRET_KEY = (
    r"(?i:aws[_\-. ]?secret(?:[_\-. ]?access)?[_\-. ]?key|secret[_\-. ]?access[_\-. ]?key)"
)
_TOOLS_WITH_SHORT_PASSWORD = r"(?:mysql|mysqldump|mysqladmin|mariadb|sshpass|mongo|mongosh)"

RULES: dict[str, tuple[str, ...]] = {
    # Any PEM private key block (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP ... BLOCK); a block
    # without its END line (a truncated log) is masked to the end of the text. Fragments
    # without their BEGIN line are handled in the scanner (they need looking backwards).
    "private-key": (
        r"(?s:-----BEGIN [A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----"
        r"(?P<secret_pem>.*?)(?=-----END [A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----|\Z))",
    ),
    # Access key ids: long-lived, temporary, and the other IAM unique-id prefixes.
    "aws-access-key": (
        r"(?P<secret_akid>(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|A3T[A-Z0-9])[A-Z0-9]{16})",
    ),
    "aws-secret-key": (
        rf"{_AWS_SECRET_KEY}[\w.-]{{0,64}}+{_QUOTED_KEY_END}{_SEPARATOR}\s*+{_value('aws')}",
    ),
    # header.payload.signature, base64url; the header of every JWT starts with '{"' = eyJ.
    "jwt": (
        r"(?<![A-Za-z0-9_-])(?P<secret_jwt>eyJ[A-Za-z0-9_-]{4,}+\.[A-Za-z0-9_-]{4,}+"
        r"\.[A-Za-z0-9_-]*+)",
    ),
    "password-assignment": (
        # key=value, key: value, key => value, key := value, "key":"value", key=\"value\".
        rf"{_KEYWORD}[\w.-]{{0,64}}+{_QUOTED_KEY_END}{_SEPARATOR}\s*+{_value('kv')}",
        # The password of scheme://user:password@host.
        r"://[^\s:/?#@]*+:(?P<secret_url>[^\s/?#]+)@",
    ),
    # "Authorization: <scheme> <credentials>", a bare "Bearer <token>", and provider API tokens
    # recognisable by their prefix (all of them authenticate whoever bears them).
    "bearer-token": (
        r"(?i:authorization)[\"']?[ \t]*+[:=][ \t]*+[\"']?(?:(?i:bearer|basic|token)[ \t]++)?"
        r"(?P<secret_header>[^\r\n\"']++)",
        r"(?i:\bbearer)\s++(?P<secret_bearer>[A-Za-z0-9._~+/-]{8,}+=*+)",
        r"(?<![A-Za-z0-9_-])(?P<secret_provider>"
        r"gl(?:pat|dt|rt|ptt|ft|imt|agent|oas)-[A-Za-z0-9_-]{20,}+"  # GitLab
        r"|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}+"  # Stripe
        r"|AIza[A-Za-z0-9_-]{35}"  # Google API key
        r"|npm_[A-Za-z0-9]{36}"  # npm
        r"|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}+"  # PyPI
        r"|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"  # SendGrid
        r"|hv[sb]\.[A-Za-z0-9_-]{24,}+"  # HashiCorp Vault
        r"|do[opr]_v1_[a-f0-9]{64}"  # DigitalOcean
        r"|sk-(?:proj-)?[A-Za-z0-9_-]{20,200}?T3BlbkFJ[A-Za-z0-9_-]{20,}+"  # OpenAI
        r"|sk-ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_-]{80,}+"  # Anthropic
        r"|sk-proj-[A-Za-z0-9_-]{40,}+"  # OpenAI project keys
        r"|hf_[A-Za-z]{34}"  # Hugging Face
        r"|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}"  # Shopify
        r"|dapi[a-f0-9]{32}(?:-[0-9])?"  # Databricks
        r")",
        r"(?<=[A-Za-z0-9]{14})(?P<secret_terraform>\.atlasv1\.[A-Za-z0-9_=-]{60,}+)",
    ),
    "slack-token": (
        r"(?P<secret_slack>xox[baprse]-[A-Za-z0-9-]++|xapp-[0-9]-[A-Za-z0-9-]++)",
        r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret_slackhook>[A-Za-z0-9/_-]++)",
    ),
    "github-token": (
        r"(?P<secret_github>(?:gh[pousr]_[A-Za-z0-9]{20,}+|github_pat_[A-Za-z0-9_]{20,}+))",
    ),
}

# Rules whose match starts before their trigger word (at a line start, ``<`` or ``--``): they
# run over the whole window, before the rules above, and take precedence where they overlap.
LEADING_RULES: dict[str, tuple[str, ...]] = {
    "password-assignment": (
        # YAML block and folded scalars: the indented lines after ``password: |`` / ``>-``.
        rf"(?m:^(?P<yaml_indent>[ \t]*+)(?:-[ \t]++)?[\w.-]{{0,64}}?{_KEYWORD}[\w.-]{{0,64}}+"
        rf"{_QUOTED_KEY_END}[ \t]*+:[ \t]*+[|>][-+0-9]{{0,2}}+[ \t]*+(?:#[^\n]*+)?\n"
        r"(?P=yaml_indent)[ \t]++(?P<secret_yaml>[^\n]*+"
        r"(?:\n(?:(?P=yaml_indent)[ \t]++[^\n]*+|[ \t]*+(?=\n)))*+))",
        # XML elements: <password>V</password>, <db:Password attr="x">V</db:Password>.
        rf"<[\w:.-]{{0,64}}?{_KEYWORD}[\w:.-]{{0,64}}+(?:[ \t][^<>]{{0,256}}+)?>"
        r"(?P<secret_xml>[^<]++)",
        # Command-line flags with a space: --password V, --db-token 'V'.
        rf"--(?<![\w-]--)[\w.-]{{0,64}}?{_KEYWORD}[\w.-]{{0,64}}+[ \t]++(?!-)"
        r"""(?:"(?P<secret_flagdq>[^"\r\n]*+)"?|'(?P<secret_flagsq>[^'\r\n]*+)'?"""
        r"""|(?P<secret_flag>[^\s"']++))""",
    ),
}

# Password flags of tools known to take one (mysql -pV, sshpass -p V, redis-cli -a V,
# curl -u user:V): applied, after the rules above, to text that names one of the tools.
TOOL_FLAG_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("mysql", "mariadb", "sshpass", "mongo"),
        r"-(?<![\w-]-)p[ \t]*+(?P<secret_shortflag>[^\s-][^\s]*+)",
    ),
    (("redis-cli",), r"-(?<![\w-]-)a[ \t]++(?P<secret_rediscli>[^\s-][^\s]*+)"),
    (("curl",), r"-(?<![\w-]-)(?:u|-user)[ \t]++[^\s:]*+:(?P<secret_curl>[^\s]++)"),
)

# Lower-cased ASCII substrings, at least one of which every rule of the family needs.
TRIGGERS: dict[str, tuple[str, ...]] = {
    "private-key": ("-----",),
    "aws-access-key": ("akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "a3t"),
    "aws-secret-key": ("aws", "secret"),
    "jwt": ("eyj",),
    "password-assignment": (
        "pass",
        "pwd",
        "secret",
        "token",
        "auth",
        "cred",
        "conn",
        "contrasena",
        "://",
        "mysql",
        "mariadb",
        "mongo",
        "redis-cli",
        "curl",
        # Not a bare "key": it is in every toleration and secretKeyRef of a Pod.
        *(
            f"{prefix}{separator}key"
            for prefix in _KEY_PREFIXES.split("|")
            for separator in ("", "_", "-", ".")
        ),
    ),
    "bearer-token": (
        "authorization",
        "bearer",
        "glpat-",
        "gldt-",
        "glrt-",
        "glptt-",
        "glft-",
        "glimt-",
        "glagent-",
        "gloas-",
        "sk_live_",
        "sk_test_",
        "rk_live_",
        "rk_test_",
        "aiza",
        "npm_",
        "pypi-",
        "sg.",
        "hvs.",
        "hvb.",
        "doo_v1_",
        "dop_v1_",
        "dor_v1_",
        "t3blbkfj",
        "sk-",
        "hf_",
        "shpat_",
        "shpss_",
        "shpca_",
        "shppa_",
        "dapi",
        ".atlasv1.",
    ),
    "slack-token": ("xox", "xapp-", "hooks.slack.com"),
    "github-token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
}

PATTERN_NAMES: frozenset[str] = frozenset(RULES)
