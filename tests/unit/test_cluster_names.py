"""The names a cluster port uses (one hash tag, so one slot), the cluster
script, the web's port list, and sentinel:// URLs (parsing, redaction, in
a --redis-url list)."""

from __future__ import annotations

import pytest

from tcp_worker.scriptcall import pack_head
from tcpws import cluster, sentinel
from tcpws.protocol import PUBLISH_SCRIPT
from tcpws.redisconn import redact_url
from tcpws.shards import split_urls


def test_every_key_of_a_port_shares_one_hash_tag() -> None:
    keys = cluster.port_keys(8001)
    names = [keys.stream, keys.live, keys.pubseq("host/tcp.8001:1:ab"), keys.probe("h/web.1"),
             keys.lines]
    assert all(name.count("{p8001}") == 1 and "{" not in name.replace("{p8001}", "")
               for name in names)
    assert keys.stream == "tcpws:{p8001}:history" and keys.live == "tcpws:{p8001}:live"
    head = pack_head("f" * 40, "w:1:ab", 10, keys)
    assert b"tcpws:{p8001}:history" in head and b"tcpws:{p8001}:pubseq:w:1:ab" in head


def test_one_redis_keeps_its_names() -> None:
    assert cluster.SINGLE.stream == "tcpws:history" and cluster.SINGLE.live == "tcpws:live"
    assert cluster.SINGLE.pubseq("x") == "tcpws:pubseq:x"


def test_the_cluster_script_publishes_sharded() -> None:
    assert "'SPUBLISH'" in cluster.CLUSTER_PUBLISH_SCRIPT
    assert cluster.CLUSTER_PUBLISH_SCRIPT.replace("'SPUBLISH'", "'PUBLISH'") == PUBLISH_SCRIPT


def test_web_ports_are_sorted_and_checked() -> None:
    assert cluster.ports("8003, 8001,8002,8001") == (8001, 8002, 8003)
    for bad in ("", "x", "0", "70000"):
        with pytest.raises(ValueError, match="--tcp-ports"):
            cluster.ports(bad)


def test_cluster_url_is_one_node() -> None:
    assert cluster.check_url("redis://:pw@10.0.0.1:7000/0")
    for bad in ("unix:///tmp/r.sock", "redis://a:1/0,redis://b:1/0", "sentinel://h:1/m"):
        with pytest.raises(ValueError, match="--redis-cluster"):
            cluster.check_url(bad)


def test_sentinel_urls() -> None:
    assert sentinel.parse("sentinel://:pw@h1:26380,h2/mymaster?db=2") == (
        [("h1", 26380), ("h2", 26379)], "mymaster", "pw", 2)
    assert sentinel.parse("sentinel://h1:1/m") == ([("h1", 1)], "m", None, 0)
    for bad in ("sentinel://h1:1", "sentinel://h1:x/m", "sentinel://h1:1/m?db=x"):
        with pytest.raises(ValueError, match="sentinel URL"):
            sentinel.parse(bad)


def test_sentinel_urls_in_a_shard_list() -> None:
    assert split_urls("redis://a:1/0,sentinel://h1:1,h2:2/m,sentinel://h3/n") == (
        "redis://a:1/0", "sentinel://h1:1,h2:2/m", "sentinel://h3/n")
    with pytest.raises(ValueError, match="master's name"):
        split_urls("sentinel://h1:1,h2:2")


def test_passwords_are_redacted_in_every_form() -> None:
    assert redact_url("sentinel://:pw@h1:1,h2:2/m") == "sentinel://:***@h1:1,h2:2/m"
    assert redact_url("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("redis://:pw@h/0") == "redis://:***@h/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
