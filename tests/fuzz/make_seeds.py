#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/ (committed; rerun after a
proto change). Messages are hand-encoded in protobuf's wire format so this
needs nothing but Python."""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def vint(field, n):
    return varint(field << 3) + varint(n)


def ld(field, data):
    if isinstance(data, str):
        data = data.encode()
    return varint((field << 3) | 2) + varint(len(data)) + data


def dbl(field, x):
    return varint((field << 3) | 1) + struct.pack("<d", x)


def packed(field, values):
    return ld(field, b"".join(varint(v) for v in values))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_rpc: method index byte + request ----
M = {m: i for i, m in enumerate(
    "OpenSession KeepAlive CloseSession OpenScope UpdateScope ReuseVariables CloseScope "
    "GetVariable NewVariable OpName ListVariables ListScopes DescribeVariable "
    "DeleteVariable Pull PullStream Push PushStream Gather SetOptimizer "
    "DescribeTraining WaitVersion Watch Save ListCheckpoints Restore Import "
    "GetStats"
    .split())}
floats = struct.pack("<12f", *range(12))
rpc = {
    "open_session": ("OpenSession", ld(1, "fuzz") + vint(2, 5000)),
    "keep_alive": ("KeepAlive", vint(1, 1)),
    "open_scope": ("OpenScope", vint(1, 1) + vint(2, 1) + ld(3, "inner") + vint(7, 2)),
    "open_name_scope": ("OpenScope", vint(1, 1) + ld(4, "ns") + vint(6, 2)),
    "reenter_root": ("OpenScope", vint(1, 1) + vint(2, 4) + vint(5, 0) + ld(4, "ignored")),
    "reenter_scope": ("OpenScope", vint(1, 1) + vint(5, 2) + vint(7, 1)),
    "update_scope": ("UpdateScope", vint(1, 1) + vint(2, 2) + vint(4, 19) + ld(6, ld(1, "dtype"))),
    "reuse": ("ReuseVariables", vint(1, 1) + vint(2, 2)),
    "close_scope": ("CloseScope", vint(1, 1) + vint(2, 4)),
    "get_variable": ("GetVariable", vint(1, 1) + vint(2, 2) + ld(3, "v") + ld(4, packed(1, [3, 2])) + vint(6, 1)),
    "get_local": ("GetVariable", vint(1, 1) + vint(2, 3) + ld(3, "l") + ld(4, b"") + vint(11, 1)
                  + ld(9, ld(1, "mine"))),
    "get_oneshot": ("GetVariable", ld(3, "w") + ld(12, "") + vint(13, 2) + ld(4, packed(1, [4, 3])) + vint(6, 1)),
    # Found by fuzz_rpc (issue 10): a waiting one-shot GetVariable under
    # AUTO_REUSE that creates the variable it waits for aborted the server.
    "crash_get_oneshot_wait_creates": ("GetVariable", ld(3, "w") + ld(12, "s") + vint(13, 2)
                                       + ld(4, packed(1, [2])) + vint(14, 1000)),
    "get_partitioned": ("GetVariable", ld(3, "p") + ld(12, "q") + ld(4, packed(1, [8, 2])) + vint(6, 2)
                        + ld(10, ld(1, vint(1, 4)))),
    "new_variable": ("NewVariable", vint(1, 1) + ld(3, "nv") + ld(6, packed(1, [2])) + vint(7, 1)),
    "op_name": ("OpName", vint(1, 1) + vint(2, 2) + ld(3, "add")),
    "op_name_preview": ("OpName", vint(1, 1) + vint(2, 2) + ld(3, "add") + vint(4, 1)),
    "list": ("ListVariables", ld(1, "s")),
    "list_page": ("ListVariables", vint(4, 1) + ld(5, "bm90LWEtdG9rZW4")),
    "list_scopes": ("ListScopes", vint(2, 1) + vint(3, 2)),
    "describe": ("DescribeVariable", ld(1, "w:0")),
    "delete": ("DeleteVariable", ld(1, "s/step")),
    "pull": ("Pull", ld(1, ld(1, "w") + ld(2, vint(1, 1) + vint(2, 2)))),
    "pull_many": ("Pull", ld(1, ld(1, "w")) + ld(1, ld(1, "emb") + vint(3, 0))),
    "pull_stream": ("PullStream", ld(1, ld(1, "emb")) + vint(2, 4096)),
    "push_assign": ("Push", ld(1, ld(1, "w") + vint(2, 1) + vint(5, 1) + ld(15, floats))),
    "push_sparse": ("Push", ld(1, ld(1, "emb") + vint(2, 2) + packed(4, [1, 1, 7]) + vint(5, 2)
                              + ld(15, struct.pack("<6d", *range(6))))),
    "push_adam": ("Push", ld(1, ld(1, "w") + vint(2, 4) + vint(5, 1) + ld(15, floats)
                            + ld(7, ld(4, dbl(1, 0.01))))),
    "push_stream": ("PushStream", ld(1, ld(1, "w") + vint(2, 2) + vint(5, 1)) + ld(2, floats)),
    "gather": ("Gather", ld(1, "emb") + packed(2, [0, 3, 3, 15])),
    "set_optimizer": ("SetOptimizer", ld(1, "emb") + ld(2, ld(1, dbl(1, 0.5))) + vint(3, 2)),
    "describe_training": ("DescribeTraining", ld(1, "emb")),
    "wait_version": ("WaitVersion", ld(1, "w") + vint(2, 0) + vint(3, 1)),
    "watch": ("Watch", ld(1, "s") + vint(2, 1) + vint(3, 4)),
    "save": ("Save", ld(1, "named")),
    "restore": ("Restore", ld(1, "named")),
    "stats": ("GetStats", b""),
    "import": ("Import", ld(1, "/nonexistent.safetensors") + ld(2, "imported")),
}
for name, (method, body) in rpc.items():
    write("fuzz_rpc", name, bytes([M[method]]) + body)

# ---- fuzz_names: names, scope paths, tokens files ----
for i, text in enumerate([
        "scope1/scope2/variable1:0", "a", ".hidden/x", "_nested-ok", "a//b", "/abs",
        "trailing/", "x" * 1030, "tower_0/dense/kernel",
        "chief admin 0123456789abcdef0123456789abcdef\n"
        "worker trainer fedcba9876543210fedcba9876543210 tower_0 tower_1/\n",
        "# comment\nr reader aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb\n"]):
    write("fuzz_names", "seed%02d" % i, text.encode())

# ---- fuzz_files: parser byte + file ----
header = b'{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},' \
         b'"__metadata__":{"format":"pt"}}'
header += b" " * (-len(header) % 8)
safetensors = struct.pack("<Q", len(header)) + header + struct.pack("<6f", *range(6))
write("fuzz_files", "safetensors", b"\x00" + safetensors)
write("fuzz_files", "safetensors_bad_offsets",
      b"\x00" + safetensors.replace(b"[0,24]", b"[0,99]"))


def wal_record(kind, body_json, data=b""):
    # [u32 payload][u32 crc32 of payload][payload = u32 header length,
    # header, data] (server/core/storage/journal.cc); header = [format 2]
    # [kind][JSON body] (server/core/storage/log_records.h).
    h = bytes([2, kind]) + body_json.encode()
    payload = struct.pack("<I", len(h)) + h + data
    return (struct.pack("<II", len(payload), zlib.crc32(payload) & 0xFFFFFFFF)
            + payload)


INIT = ('{"kind":"zeros","values":[],"verify_shape":false,"minval":0,"mean":0,'
        '"stddev":1,"scale":1,"mode":"fan_in","distribution":"truncated_normal",'
        '"seed":0}')
write("fuzz_files", "wal_create", b"\x01"
      + wal_record(1, '{"revision":1,"variables":[{"name":"w","dtype":"float32",'
                   '"shape":[2],"version":1,"trainable":true,"collections":["variables"],'
                   '"initializer":' + INIT + ',"value_bytes":8}]}',
                   struct.pack("<2f", 1, 2))
      + wal_record(5, '{"ceiling":100}')
      + wal_record(4, '{"revision":2,"names":["w"],"replicas":0,'
                   '"optimizer":{"kind":"adam","hyperparameters":{"learning_rate":0.1}}}')
      + wal_record(3, '{"revision":3,"updates":[{"name":"w","op":"APPLY_GRADIENT",'
                   '"dtype":"float32","version_before":2,"data_bytes":8}]}',
                   struct.pack("<2f", 1, 1))
      + wal_record(3, '{"revision":4,"updates":[{"name":"w","op":"ADD","dtype":"float32",'
                   '"version_before":3,"data_bytes":4,"sparse":true,"index_count":1}]}',
                   struct.pack("<q", 1) + struct.pack("<f", 1))
      + wal_record(2, '{"name":"w"}'))
write("fuzz_files", "state_json", b"\x02" + ('{"name":"w","dtype":"float32",'
      '"shape":[2,3],"version":3,"trainable":true,"collections":["variables"],'
      '"initializer":' + INIT + ',"optimizer":{"kind":"sgd","hyperparameters":'
      '{"learning_rate":0.5}}}').encode())
