"""Java Kafka client settings, as users copy them from Spark jobs, turned into librdkafka's.

Spark's Kafka source hands every ``kafka.*`` option to the Java client; pktstream hands them to
librdkafka. Most keys mean the same in both (``security.protocol``, ``sasl.mechanism``,
``ssl.key.password``, ``request.timeout.ms``...). The ones that do not are here, each either
translated to its librdkafka equivalent or refused with a message naming the key to use instead:
a Java key passed through unchanged would be rejected by librdkafka with a less helpful error, and
one it happened to accept with another meaning would be worse.

Secrets (passwords, the JAAS line, private keys) never appear in error messages or reprs:
:func:`is_secret` says which keys hold them, :func:`redacted` masks them.
"""

from __future__ import annotations

import re
from typing import Dict, Mapping

__all__ = ["translate", "parse_jaas", "is_secret", "redacted"]

_PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
_SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"

#: Java-only keys refused, with what to use instead (librdkafka key names).
_REFUSED = {
    "ssl.truststore.location": "ssl.ca.location (a PEM file of CA certificates; convert a JKS trust store with "
    "`keytool -exportcert -rfc -keystore truststore.jks -alias <ca>`)",
    "ssl.truststore.password": "ssl.ca.location (a PEM file needs no password)",
    "ssl.truststore.type": "ssl.ca.location (PEM) or ssl.ca.pem",
    "key.deserializer": "nothing: pktstream decodes values itself (the `format` option); keys are bytes",
    "value.deserializer": "the `format` option (json, raw, arrow)",
    "key.serializer": "the sink's `key` option",
    "value.serializer": "the sink's `format` option (json, csv, arrow)",
    "auto.offset.reset": "the startingOffsets option (offsets live in Spark's checkpoint)",
    "enable.auto.commit": "nothing: offsets live in Spark's checkpoint, nothing is committed to Kafka",
    "interceptor.classes": "nothing: librdkafka has no interceptors",
    "max.poll.records": "nothing: pktstream reads up to 65,536 messages per native call",
    "sasl.login.callback.handler.class": "sasl.oauthbearer.method=oidc with sasl.oauthbearer.client.id, "
    "sasl.oauthbearer.client.secret and sasl.oauthbearer.token.endpoint.url",
    "sasl.client.callback.handler.class": "sasl.oauthbearer.method=oidc with sasl.oauthbearer.* keys",
    "partitioner.class": "partitioner (e.g. murmur2_random, the Java client's default)",
}

#: Java keys with another name (or value syntax) in librdkafka.
_RENAMED = {
    "ssl.truststore.certificates": "ssl.ca.pem",
    "ssl.keystore.certificate.chain": "ssl.certificate.pem",
    "ssl.keystore.key": "ssl.key.pem",
}

_SECRET_WORDS = ("password", "secret", "jaas", "ssl.key.pem", "ssl.keystore.key", "sasl.oauthbearer.config")


def is_secret(key: str) -> bool:
    """True for configuration keys whose values are secrets (with or without the ``kafka.`` prefix).

    Example:
        >>> is_secret("kafka.sasl.jaas.config"), is_secret("sasl.password"), is_secret("acks")
        (True, True, False)
    """
    k = key.lower()
    return any(word in k for word in _SECRET_WORDS)


def redacted(config: Mapping[str, str]) -> Dict[str, str]:
    """``config`` with every secret value replaced by ``***``.

    Example:
        >>> redacted({"sasl.username": "u", "sasl.password": "p"})
        {'sasl.username': 'u', 'sasl.password': '***'}
    """
    return {k: "***" if is_secret(k) else v for k, v in config.items()}


_JAAS = re.compile(r"^\s*(?P<module>[\w.$]+)\s+(?P<flag>required|requisite|sufficient|optional)(?P<rest>.*?);?\s*$",
                   re.S)
_JAAS_OPTION = re.compile(r'\s*(?P<key>[\w.-]+)\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^\s;"]+))', re.S)


def parse_jaas(text: str) -> Dict[str, str]:
    """The librdkafka settings of a Java ``sasl.jaas.config`` line (PLAIN or SCRAM login modules).

    ``PlainLoginModule`` sets ``sasl.username``/``sasl.password`` (and ``sasl.mechanism=PLAIN``
    unless the caller set a mechanism); ``ScramLoginModule`` sets the user and password, and the
    SCRAM mechanism comes from ``sasl.mechanism`` as in Java. Other modules are refused with the
    librdkafka keys to use. Error messages never include the line (it holds a password).

    Example:
        >>> parse_jaas('org.apache.kafka.common.security.plain.PlainLoginModule required '
        ...            'username="alice" password="s3cret";')
        {'sasl.username': 'alice', 'sasl.password': 's3cret', 'sasl.mechanism': 'PLAIN'}
    """
    m = _JAAS.match(text)
    if m is None:
        raise ValueError(
            "pktstream: kafka.sasl.jaas.config is not a JAAS line like "
            "'org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p\";' "
            "(its value is not shown: it holds a password)"
        )
    module = m.group("module")
    options: Dict[str, str] = {}
    rest = m.group("rest")
    pos = 0
    while pos < len(rest.strip()):
        o = _JAAS_OPTION.match(rest, pos)
        if o is None:
            break
        value = o.group("quoted")
        value = re.sub(r"\\(.)", r"\1", value) if value is not None else o.group("bare")
        options[o.group("key")] = value
        pos = o.end()
    if module not in (_PLAIN, _SCRAM):
        hint = {
            "OAuthBearerLoginModule": "sasl.mechanism=OAUTHBEARER with sasl.oauthbearer.method=oidc, "
            "sasl.oauthbearer.client.id, sasl.oauthbearer.client.secret, sasl.oauthbearer.token.endpoint.url",
            "Krb5LoginModule": "sasl.mechanism=GSSAPI with sasl.kerberos.keytab, sasl.kerberos.principal",
        }.get(module.rsplit(".", 1)[-1], "sasl.username / sasl.password")
        raise ValueError(f"pktstream: the JAAS login module {module} has no translation; set the librdkafka keys "
                         f"instead: {hint}")
    missing = [k for k in ("username", "password") if k not in options]
    if missing:
        raise ValueError(f"pktstream: kafka.sasl.jaas.config ({module.rsplit('.', 1)[-1]}) lacks {' and '.join(missing)}")
    out = {"sasl.username": options["username"], "sasl.password": options["password"]}
    if module == _PLAIN:
        out["sasl.mechanism"] = "PLAIN"
    return out


def translate(config: Mapping[str, str]) -> Dict[str, str]:
    """Java client keys (``kafka.`` prefix removed) as librdkafka's; other keys unchanged.

    Example:
        >>> translate({"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        ...            "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule '
        ...                                'required username="u" password="p";'})
        {'security.protocol': 'SASL_SSL', 'sasl.mechanism': 'SCRAM-SHA-512', 'sasl.username': 'u', 'sasl.password': 'p'}
        >>> translate({"ssl.truststore.location": "/etc/kafka/truststore.jks"})
        Traceback (most recent call last):
        ...
        ValueError: pktstream: kafka.ssl.truststore.location is a Java client setting ...
    """
    out: Dict[str, str] = {}
    keystore_type = str(config.get("ssl.keystore.type", "JKS")).upper()
    for key, value in config.items():
        k = key.lower()
        if k in _REFUSED:
            raise ValueError(f"pktstream: kafka.{key} is a Java client setting that librdkafka does not have; "
                             f"use {_REFUSED[k]}")
        if k == "sasl.jaas.config":
            jaas = parse_jaas(str(value))
            if "sasl.mechanism" in jaas and any(m in config for m in ("sasl.mechanism", "sasl.mechanisms")):
                jaas.pop("sasl.mechanism")
            out.update(jaas)
        elif k in _RENAMED:
            out[_RENAMED[k]] = value
        elif k == "ssl.keystore.type":
            if keystore_type not in ("PKCS12", "PEM"):
                raise ValueError(f"pktstream: kafka.ssl.keystore.type={value} is not read by librdkafka; use a PKCS#12 "
                                 "keystore (ssl.keystore.location) or PEM files (ssl.certificate.location, "
                                 "ssl.key.location)")
        elif k == "ssl.keystore.location" and keystore_type == "JKS":
            raise ValueError("pktstream: kafka.ssl.keystore.location with a JKS keystore is a Java client setting; "
                             "use ssl.certificate.location and ssl.key.location (PEM), or a PKCS#12 keystore with "
                             "kafka.ssl.keystore.type=PKCS12")
        elif k == "ssl.endpoint.identification.algorithm" and str(value).strip() == "":
            out[key] = "none"  # Java's empty string turns host name checks off; librdkafka says `none`
        else:
            out[key] = value
    if "sasl.mechanism" in out and "sasl.mechanisms" in out:
        out.pop("sasl.mechanism")
    if str(config.get("sasl.jaas.config", "")).find(_SCRAM) >= 0 and not any(
        k in out for k in ("sasl.mechanism", "sasl.mechanisms")
    ):
        raise ValueError("pktstream: a ScramLoginModule kafka.sasl.jaas.config needs kafka.sasl.mechanism="
                         "SCRAM-SHA-256 or SCRAM-SHA-512 (as the Java client does)")
    return out
