"""What a Redis store URL names: one server, a Cluster, or a Sentinel-managed master.

Pure parsing, no redis-py: `open_store` and the server's settings can check a URL without
importing the client library, and the tests can check every form without a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

SINGLE: Final = "single"
CLUSTER: Final = "cluster"
SENTINEL: Final = "sentinel"
# The URL schemes and the topology each names.
SCHEMES: Final = {
    "redis": SINGLE,
    "rediss": SINGLE,
    "redis+cluster": CLUSTER,
    "redis+sentinel": SENTINEL,
}
# Query options of this store (the rest go to redis-py for a single server).
WAIT_REPLICAS: Final = "wait_replicas"
WAIT_TIMEOUT_MS: Final = "wait_timeout_ms"
_DEFAULT_WAIT_TIMEOUT_MS: Final = 100
_DEFAULT_PORTS: Final = {SINGLE: 6379, CLUSTER: 6379, SENTINEL: 26379}


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed Redis store URL.

    Attributes:
        topology: SINGLE, CLUSTER or SENTINEL.
        url: For SINGLE, the URL to give redis-py (this store's own options removed).
        nodes: For CLUSTER, the seed nodes; for SENTINEL, the sentinels (host, port).
        username: For CLUSTER and SENTINEL, the Redis user (None for the default user).
        password: For CLUSTER and SENTINEL, the Redis password, if any.
        master: For SENTINEL, the monitored master's name.
        db: For SENTINEL, the database number (a Cluster has only database 0).
        wait_replicas: Replicas that must acknowledge each write (Redis WAIT); 0 waits for none.
        wait_timeout_ms: How long a write waits for them before it is reported as failed.
        where: The URL without credentials, for logs and error messages.
    """

    topology: str
    url: str = ""
    nodes: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = None
    master: str = ""
    db: int = 0
    wait_replicas: int = 0
    wait_timeout_ms: int = _DEFAULT_WAIT_TIMEOUT_MS
    where: str = ""


def parse_redis_url(url: str) -> RedisTarget:
    """Parses `redis://`, `rediss://`, `redis+cluster://` and `redis+sentinel://` URLs.

    Forms: `redis[s]://[[user]:password@]host[:port][/db]`,
    `redis+cluster://[[user]:password@]host:port[,host:port...]` (any nodes; the client finds
    the rest), `redis+sentinel://[[user]:password@]host:port[,host:port...]/MASTER_NAME[/db]`
    (the credentials are the master's; sentinels are asked without them). Every form takes
    `?wait_replicas=N[&wait_timeout_ms=MS]`, except a Cluster.

    Raises:
        ValueError: An unknown scheme, no host, a bad port, no master name, a bad option.
    """
    scheme, separator, rest = url.partition("://")
    topology = SCHEMES.get(scheme.lower())
    if not separator or topology is None:
        raise ValueError(f"not a Redis URL: {scheme!r}; expected one of {', '.join(SCHEMES)}")
    location, _, query = rest.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True))
    wait_replicas = _count(options.pop(WAIT_REPLICAS, "0"), WAIT_REPLICAS, least=0)
    wait_timeout_ms = _count(
        options.pop(WAIT_TIMEOUT_MS, str(_DEFAULT_WAIT_TIMEOUT_MS)), WAIT_TIMEOUT_MS, least=1
    )
    netloc, _, path = location.partition("/")
    credentials, at, hosts = netloc.rpartition("@")
    where = f"{scheme.lower()}://{hosts}/{path}".rstrip("/")
    if topology == SINGLE:
        if not hosts:
            raise ValueError(f"Redis URL names no host: {where}")
        parts = urlsplit(url)
        kept = urlunsplit(parts._replace(scheme=scheme.lower(), query=urlencode(options)))
        return RedisTarget(
            SINGLE,
            url=kept,
            wait_replicas=wait_replicas,
            wait_timeout_ms=wait_timeout_ms,
            where=where,
        )
    if options:
        raise ValueError(f"unknown options {sorted(options)} in {where}")
    username, _, password = credentials.partition(":") if at else ("", "", "")
    nodes = tuple(_node(node, _DEFAULT_PORTS[topology], where) for node in hosts.split(","))
    if topology == CLUSTER:
        if wait_replicas:
            raise ValueError(f"{WAIT_REPLICAS} is not supported with redis+cluster: {where}")
        if path:
            raise ValueError(f"a Redis Cluster has only database 0; drop /{path} from {where}")
        master, db = "", "0"
    else:
        master, _, db = path.partition("/")
        if not master:
            raise ValueError(f"Sentinel URL names no master: expected {where}/MASTER_NAME")
    return RedisTarget(
        topology,
        nodes=nodes,
        username=unquote(username) or None,
        password=unquote(password) or None,
        master=unquote(master),
        db=_count(db or "0", "database", least=0),
        wait_replicas=wait_replicas,
        wait_timeout_ms=wait_timeout_ms,
        where=where,
    )


def _node(text: str, default_port: int, where: str) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, _, port = text[1:].partition("]")
        port = port.removeprefix(":")
    else:
        host, _, port = text.partition(":")
    if not host:
        raise ValueError(f"empty host in {where}")
    return host, _count(port or str(default_port), f"port of {host}", least=1, most=65535)


def _count(text: str, what: str, *, least: int, most: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} must be a whole number, got {text!r}") from None
    if value < least or (most is not None and value > most):
        bound = f"between {least} and {most}" if most is not None else f"at least {least}"
        raise ValueError(f"{what} must be {bound}, got {value}")
    return value
