#!/usr/bin/env python3
"""An independent samizdat format-1 verifier, written from docs/FORMAT.md alone.

Checks the test vectors in this folder: the repository, the expected values, the negative
vectors and (when a zstd decoder is available: the `zstandard` module or the `zstd` command)
the bundles. Python 3.8+ standard library only; Ed25519 is implemented here (RFC 8032 with
the strict checks of FORMAT.md section 4.3). Not constant-time: for verification only.

    python3 tests/vectors/verify.py [VECTORS_DIR]

Exits 0 and prints "N passed, 0 failed" when every check holds.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import unicodedata


class Reject(Exception):
    """The input is not valid samizdat format 1."""


def sha256(b):
    return hashlib.sha256(b).digest()


# --- Ed25519, strict (FORMAT.md 4.3) -------------------------------------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = t1 * 2 * D * t2 % P
    dd = z1 * 2 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, pt):
    q = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            q = _add(q, pt)
        pt = _add(pt, pt)
        s >>= 1
    return q


def _encode(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode(b):
    """RFC 8032 5.1.3 point decoding (rejects y >= p; see FORMAT.md 4.3)."""
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        if sign:
            return None
        x = 0
    else:
        x = pow(x2, (P + 3) // 8, P)
        if (x * x - x2) % P:
            x = x * SQRT_M1 % P
        if (x * x - x2) % P:
            return None
        if (x & 1) != sign:
            x = P - x
    return (x, y, 1, x * y % P)


def _small_order(pt):
    x, y, z, _ = _mul(8, pt)
    return x % P == 0 and (y - z) % P == 0


_B = _decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))


def ed25519_verify_strict(key, msg, sig):
    if len(key) != 32 or len(sig) != 64:
        return False
    a = _decode(key)
    if a is None or _small_order(a):
        return False
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return False
    r = _decode(sig[:32])
    if r is None or _small_order(r):
        return False
    k = int.from_bytes(hashlib.sha512(sig[:32] + key + msg).digest(), "little") % L
    neg_a = ((P - a[0]) % P, a[1], a[2], (P - a[3]) % P)
    return _encode(_add(_mul(s, _B), _mul(k, neg_a))) == sig[:32]


# --- Canonical CBOR (FORMAT.md 3) ------------------------------------------------------


class Map(list):
    """A decoded map: its (key, value) pairs in encoded order."""


def cbor_decode(b, max_len):
    if len(b) > max_len:
        raise Reject("%d bytes exceeds the limit of %d" % (len(b), max_len))
    pos = 0

    def head():
        nonlocal pos
        if pos >= len(b):
            raise Reject("truncated")
        ib = b[pos]
        pos += 1
        major, info = ib >> 5, ib & 0x1F
        if info < 24:
            return major, info
        if info > 27:
            raise Reject("indefinite length or reserved head")
        n = 1 << (info - 24)
        if pos + n > len(b):
            raise Reject("truncated")
        v = int.from_bytes(b[pos : pos + n], "big")
        pos += n
        if v < (24 if n == 1 else 1 << (4 * n)):
            raise Reject("not in canonical encoding (long head)")
        return major, v

    def item(depth):
        nonlocal pos
        if depth > 16:
            raise Reject("nested too deeply")
        start = pos
        major, v = head()
        if major == 0:
            return v
        if major in (2, 3):
            if pos + v > len(b):
                raise Reject("truncated")
            s = bytes(b[pos : pos + v])
            pos += v
            if major == 2:
                return s
            try:
                return s.decode("utf-8")
            except UnicodeDecodeError:
                raise Reject("invalid UTF-8")
        if major == 4:
            if v > len(b):
                raise Reject("array longer than the input")
            return [item(depth + 1) for _ in range(v)]
        if major == 5:
            m = Map()
            for _ in range(v):
                k = item(depth + 1)
                m.append((k, item(depth + 1)))
            return m
        if major == 7 and start + 1 == pos and b[start] == 0xF6:
            return None
        raise Reject("CBOR type not allowed (major %d)" % major)

    value = item(0)
    if pos != len(b):
        raise Reject("%d trailing bytes after the item" % (len(b) - pos))
    return value


def fields(m, n, what, versions=(1,)):
    """A map with exactly the keys 0..n-1 in order, key 0 a known version: its values."""
    if not isinstance(m, Map) or len(m) != n:
        raise Reject("%s: not a map of %d entries" % (what, n))
    for i, (k, _) in enumerate(m):
        if k != i:
            raise Reject("%s: key %r where key %d was expected" % (what, k, i))
    vals = [v for _, v in m]
    if vals[0] not in versions:
        raise Reject("%s: format version %r is not supported" % (what, vals[0]))
    return vals


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_hash(v):
    return isinstance(v, bytes) and len(v) == 32


def need(cond, why):
    if not cond:
        raise Reject(why)


def has_cc(s):
    return any(unicodedata.category(c) == "Cc" for c in s)


# --- Envelopes and documents (FORMAT.md 4, 5) -----------------------------------------

MIB = 1 << 20


def decode_envelope(b, role):
    e = cbor_decode(b, MIB)
    need(isinstance(e, list) and len(e) == 3, "envelope is not a 3-item array")
    label, body, sigs = e
    need(isinstance(label, str) and len(label.encode()) <= 16, "bad role")
    need(label == role, "envelope holds a %r document, expected %r" % (label, role))
    need(isinstance(body, bytes) and isinstance(sigs, list) and len(sigs) <= 32, "bad envelope")
    out = []
    for s in sigs:
        need(isinstance(s, list) and len(s) == 3, "bad signature entry")
        need(s[0] == 1, "unknown signature algorithm %r" % (s[0],))
        need(isinstance(s[1], bytes) and len(s[1]) == 32, "bad key")
        need(isinstance(s[2], bytes) and len(s[2]) == 64, "bad signature")
        out.append((s[1], s[2]))
    return body, out


def signers(role, body, sigs, allowed):
    msg = b"samizdat-v1/" + role.encode() + b"\x00" + body
    ok = set()
    for key, sig in sigs:
        if key not in ok and allowed(key) and ed25519_verify_strict(key, msg, sig):
            ok.add(key)
    return ok


def require(role, body, sigs, threshold, allowed, what):
    ok = signers(role, body, sigs, allowed)
    need(len(ok) >= threshold, "%s: %d valid signatures, threshold %d" % (what, len(ok), threshold))
    return ok


def ascending(keys):
    return all(a < b for a, b in zip(keys, keys[1:]))


def decode_root(body):
    v = fields(cbor_decode(body, MIB), 8, "root")
    _, name, version, threshold, keys, created, prev, site = v
    need(isinstance(name, str) and len(name.encode()) <= 1024 and not has_cc(name), "root name")
    need(is_uint(version) and is_uint(threshold) and is_uint(created), "root integers")
    need(isinstance(keys, list) and len(keys) <= 64 and all(is_hash(k) for k in keys), "root keys")
    need(ascending(keys), "root keys not strictly ascending")
    need(1 <= threshold <= len(keys), "root threshold")
    need(prev is None or is_hash(prev), "root prev")
    need(site is None or is_hash(site), "root site")
    need(version >= 1 and (version == 1) == (prev is None) == (site is None), "root version rules")
    return dict(version=version, threshold=threshold, keys=keys, prev=prev, site=site, name=name)


def decode_keyset(body):
    v = fields(cbor_decode(body, MIB), 8, "keyset")
    _, site, version, root_version, threshold, keys, revoked, created = v
    need(is_hash(site) and is_uint(version) and is_uint(root_version), "keyset fields")
    need(is_uint(threshold) and is_uint(created), "keyset fields")
    for lst, cap in ((keys, 64), (revoked, 1024)):
        need(isinstance(lst, list) and len(lst) <= cap, "keyset key list")
        for e in lst:
            need(isinstance(e, list) and len(e) == 2 and is_hash(e[0]) and is_uint(e[1]), "key entry")
        need(ascending([e[0] for e in lst]), "keyset keys not strictly ascending")
    need(1 <= threshold <= len(keys), "keyset threshold")
    need(version >= 1 and root_version >= 1, "keyset versions start at 1")
    need(not ({e[0] for e in keys} & {e[0] for e in revoked}), "key both active and revoked")
    return dict(site=site, version=version, root_version=root_version, threshold=threshold,
                keys={e[0]: e[1] for e in keys}, revoked={e[0]: e[1] for e in revoked}, body=body)


def decode_snapshot(body):
    v = fields(cbor_decode(body, MIB), 11, "snapshot")
    _, site, seq, created, expires, prev, root, kv, files, nbytes, mirrors = v
    need(is_hash(site) and all(is_uint(x) for x in (seq, created, expires, kv, files, nbytes)), "snapshot")
    need(prev is None or is_hash(prev), "snapshot prev")
    need(isinstance(root, list) and len(root) == 2 and is_hash(root[0]) and is_uint(root[1]), "root ref")
    need(isinstance(mirrors, list) and len(mirrors) <= 256, "mirrors")
    for m in mirrors:
        need(isinstance(m, str) and len(m.encode()) <= 1024 and not has_cc(m), "mirror")
    need(seq >= 1 and kv >= 1, "sequence numbers and versions start at 1")
    need(root[1] <= 16 * MIB, "root tree too large")
    return dict(site=site, seq=seq, created=created, expires=expires, prev=prev,
                root=(root[0], root[1]), keyset_version=kv, files=files, bytes=nbytes)


def decode_head(body):
    v = fields(cbor_decode(body, MIB), 8, "head")
    _, site, seq, snapshot, issued, expires, kv, rv = v
    need(is_hash(site) and is_hash(snapshot), "head hashes")
    need(all(is_uint(x) for x in (seq, issued, expires, kv, rv)), "head integers")
    return dict(site=site, seq=seq, snapshot=snapshot, issued=issued, expires=expires,
                keyset_version=kv, root_version=rv)


def check_name(name):
    need(isinstance(name, str) and name not in ("", ".", ".."), "bad name %r" % (name,))
    need(len(name.encode()) <= 255, "name too long")
    need(not any(c in name for c in "/\\\x00") and not has_cc(name), "forbidden character in %r" % name)
    invisible = lambda c: c == "\u061c" or "\u200b" <= c <= "\u200f" or "\u202a" <= c <= "\u202e" \
        or "\u2060" <= c <= "\u2069" or c == "\ufeff"
    need(not any(invisible(c) for c in name), "invisible character in %r" % name)
    need(not any(c in name for c in ':<>"|?*'), "Windows-unsafe character in %r" % name)
    need(not name.endswith((".", " ")), "trailing dot or space in %r" % name)
    reserved = {"CON", "PRN", "AUX", "NUL"} | {"COM%d" % i for i in range(1, 10)} | {"LPT%d" % i for i in range(1, 10)}
    need(name.split(".")[0].encode().upper().decode() not in reserved, "reserved device name %r" % name)
    need(unicodedata.is_normalized("NFC", name), "name %r is not NFC" % name)


def decode_tree(b):
    t = cbor_decode(b, 16 * MIB)
    need(isinstance(t, list) and len(t) <= 1 << 20, "tree is not an array")
    out, folded = [], set()
    for e in t:
        need(isinstance(e, list) and len(e) >= 2, "tree entry")
        check_name(e[0])
        if e[1] == 0 and len(e) == 5:
            need(is_hash(e[2]) and is_uint(e[3]) and isinstance(e[4], str), "file entry")
            need(len(e[4]) <= 255 and all(0x20 <= ord(c) <= 0x7E for c in e[4]), "media type")
        elif e[1] == 1 and len(e) == 4:
            need(is_hash(e[2]) and is_uint(e[3]) and e[3] <= 16 * MIB, "dir entry")
        else:
            raise Reject("entry kind %r with %d fields" % (e[1], len(e)))
        need(not out or out[-1][0].encode() < e[0].encode(), "names not strictly ascending")
        need(e[0].lower() not in folded, "case collision at %r" % e[0])
        folded.add(e[0].lower())
        out.append(e)
    return out


# --- Hashes (FORMAT.md 2) ---------------------------------------------------------------


def object_address(data):
    blocks = [data[i : i + 16384] for i in range(0, len(data), 16384)] or [b""]
    layer = [sha256(x) for x in blocks]
    while len(layer) & (len(layer) - 1):
        layer.append(bytes(32))
    while len(layer) > 1:
        layer = [sha256(layer[i] + layer[i + 1]) for i in range(0, len(layer), 2)]
    return layer[0]


def fingerprint(site):
    return "sz1" + base64.b32encode(site).decode().rstrip("=").lower()


def parse_pub(text):
    lines = text.split("\n")
    need(lines[0].startswith("samizdat-publisher-v1"), "not a .pub file")
    fp = lines[0][len("samizdat-publisher-v1"):].strip()
    need(all(not x.strip() for x in lines[2:]), "extra lines")
    genesis = base64.b64decode(lines[1].strip(), validate=True)
    body, _ = decode_envelope(genesis, "root")
    need(fingerprint(sha256(body)) == fp, "fingerprint mismatch")
    return sha256(body)


# --- Verification (FORMAT.md 8) --------------------------------------------------------


def verify(site, roots_raw, keyset_raw, snapshot_raw, head_raw):
    need(roots_raw, "no roots")
    roots, prev_body = [], None
    for i, raw in enumerate(roots_raw, 1):
        body, sigs = decode_envelope(raw, "root")
        r = decode_root(body)
        need(r["version"] == i, "root version %d says %d" % (i, r["version"]))
        if i == 1:
            need(sha256(body) == site, "genesis root does not match the pinned site id")
        else:
            p = roots[-1]
            need(r["prev"] == sha256(prev_body) and r["site"] == site, "root chain link")
            require("root", body, sigs, p["threshold"], lambda k: k in p["keys"], "root by previous")
        require("root", body, sigs, r["threshold"], lambda k: k in r["keys"], "root %d" % i)
        roots.append(r)
        prev_body = body
    root = roots[-1]
    kbody, ksigs = decode_envelope(keyset_raw, "keyset")
    ks = decode_keyset(kbody)
    need(ks["site"] == site and ks["root_version"] == root["version"], "keyset site/root_version")
    require("keyset", kbody, ksigs, root["threshold"], lambda k: k in root["keys"], "keyset")
    hbody, hsigs = decode_envelope(head_raw, "head")
    head = decode_head(hbody)
    need(head["site"] == site, "head site")
    need(head["keyset_version"] == ks["version"] and head["root_version"] == root["version"], "head versions")
    valid_at = lambda t: (lambda k: k in ks["keys"] and ks["keys"][k] >= t)
    require("head", hbody, hsigs, ks["threshold"], valid_at(head["issued"]), "head")
    sbody, ssigs = decode_envelope(snapshot_raw, "snapshot")
    sid = sha256(sbody)
    need(sid == head["snapshot"], "head names another snapshot")
    snap = decode_snapshot(sbody)
    need(snap["site"] == site and snap["seq"] == head["seq"], "snapshot site/seq")
    need(snap["keyset_version"] == ks["version"], "snapshot keyset_version")
    signed = require("snapshot", sbody, ssigs, ks["threshold"], valid_at(snap["created"]), "snapshot")
    return dict(roots=[decode_envelope(r, "root")[0] for r in roots_raw], keyset=ks, head=head,
                snapshot=snap, id=sid, signers=signed)


def check_advance(cur, new):
    """FORMAT.md 8.9: 'same' or 'newer', or raises Reject."""
    need(len(new["roots"]) >= len(cur["roots"]), "rollback: fewer roots")
    need(new["roots"][: len(cur["roots"])] == cur["roots"], "forked root history")
    nk, ck = new["keyset"], cur["keyset"]
    need(nk["version"] >= ck["version"], "rollback: older keyset")
    need(nk["version"] != ck["version"] or nk["body"] == ck["body"], "keyset equivocation")
    c = cur["snapshot"]["seq"]
    bound = {k: nk["revoked"].get(k, float("inf")) for k in cur["signers"]}
    candidates = sorted({c} | {m for m in bound.values() if m < c}, reverse=True)
    meets = [s for s in candidates if sum(1 for m in bound.values() if m >= s) >= nk["threshold"]]
    floor = meets[0] if meets else candidates[-1]
    n = new["snapshot"]["seq"]
    if n == c and floor == c:
        need(new["id"] == cur["id"], "equivocation")
        return "same"
    need(n > floor, "rollback: seq %d is not above %d" % (n, floor))
    return "newer"


def hexpath(kind, h):
    x = h.hex()
    return "%s/%s/%s" % (kind, x[:2], x)


def load(get, site):
    """FORMAT.md 8.1-8.7 over `get(relative path) -> bytes or None`."""
    def fetch(rel):
        b = get(rel)
        need(b is not None, "missing " + rel)
        return b
    head_raw = fetch("head")
    need(len(head_raw) <= MIB, "head too large")
    claim = decode_head(decode_envelope(head_raw, "head")[0])
    need(1 <= claim["root_version"] <= 1000, "root version out of range")
    roots = [fetch("roots/%d.root" % v) for v in range(1, claim["root_version"] + 1)]
    state = verify(site, roots, fetch("keysets/%d.keyset" % claim["keyset_version"]),
                   fetch("snapshots/%s.snap" % claim["snapshot"].hex()), head_raw)
    snap, sizes, files, total = state["snapshot"], {}, [], 0
    stack, visits = [(snap["root"], "", 0)], 0
    while stack:
        (h, ln), d, depth = stack.pop()
        need(depth < 64, "too deep")
        visits += 1
        need(visits <= snap["files"] + 65536, "too many directories")
        b = fetch(hexpath("trees", h))
        need(len(b) == ln and sha256(b) == h, "tree %s does not match its hash or length" % h.hex())
        for e in decode_tree(b):
            path = e[0] if not d else d + "/" + e[0]
            if e[1] == 1:
                stack.append(((e[2], e[3]), path, depth + 1))
            else:
                need(sizes.setdefault(e[2], e[3]) == e[3], "one address, two sizes")
                files.append((path, e[2], e[3]))
                total += e[3]
                need(len(files) <= snap["files"], "more files than declared")
    need(len(files) == snap["files"] and total == snap["bytes"], "totals do not match")
    for path, h, size in files:
        data = fetch(hexpath("objects", h))
        need(len(data) <= size, "object larger than declared")
        need(len(data) == size, "object truncated")
        need(object_address(data) == h, "object %s tampered" % path)
    state["files"] = files
    return state


# --- Bundles (FORMAT.md 10) ------------------------------------------------------------


def zstd_decompress(frame, reference=None, window=1 << 27):
    """One zstd frame; with `reference`, decoded with it as a raw-content prefix
    (what `zstd -d --patch-from` does). None if no decoder is available."""
    try:
        import zstandard
        d = None
        if reference is not None:
            d = zstandard.ZstdCompressionDict(reference, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        return zstandard.ZstdDecompressor(dict_data=d, max_window_size=window).decompressobj().decompress(frame)
    except ImportError:
        pass
    if not shutil.which("zstd"):
        return None
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["zstd", "-d", "-c", "-q", "--memory=%dMB" % (window >> 20)]
        if reference is not None:
            ref = os.path.join(tmp, "ref")
            with open(ref, "wb") as f:
                f.write(reference)
            cmd.append("--patch-from=" + ref)
        r = subprocess.run(cmd, input=frame, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    need(r.returncode == 0, "zstd: " + r.stderr.decode(errors="replace"))
    return r.stdout


PATCH_MAX = 8 * MIB


def read_bundle(data, site, local):
    """Verifies a bundle; `local(rel)` gives the target repository's file (bytes) or None."""
    need(data[:8] == b"\x89SZB\r\n\x1a\n", "bad magic")
    version = data[8:9]
    need(version in (b"\x01", b"\x02"), "bundle version")
    s = zstd_decompress(data[9:])
    if s is None:
        return None
    pos = 0

    def take(n):
        nonlocal pos
        need(pos + n <= len(s), "truncated")
        pos += n
        return s[pos - n : pos]

    u32 = lambda: int.from_bytes(take(4), "big")
    u64 = lambda: int.from_bytes(take(8), "big")

    def doc():
        n = u32()
        need(n <= MIB, "record too large")
        return take(n)

    def patched(ln, where):
        # FORMAT.md 10.4: reference, patch length, one zstd frame against it.
        need(version == b"\x02", "patch record in a version 1 bundle")
        ref, ref_len, plen = take(32), u64(), u32()
        need(ln <= PATCH_MAX and ref_len <= PATCH_MAX and 0 < plen < ln, "patch limits")
        base = local(hexpath(where, ref))
        need(base is not None and len(base) == ref_len, "patch reference not in the target")
        out = zstd_decompress(take(plen), base, 1 << 24)
        need(out is not None and len(out) == ln, "patch does not give the signed size")
        return out

    tag, base = take(1), None
    if tag == b"B":
        base = (u64(), take(32))
        tag = take(1)
    roots = []
    while tag == b"R":
        roots.append(doc())
        tag = take(1)
    need(tag == b"K", "expected keyset")
    keyset = doc()
    need(take(1) == b"S", "expected snapshot")
    snapshot = doc()
    need(take(1) == b"H", "expected head")
    state = verify(site, roots, keyset, snapshot, doc())
    if base is not None:
        need(local("snapshots/%s.snap" % base[1].hex()), "delta base not in the target")
    pend_t = {state["snapshot"]["root"][0]: state["snapshot"]["root"][1]}
    pend_o, ntrees, nobj = {}, 0, 0
    tag = take(1)
    while tag in (b"T", b"t"):
        h, ln = take(32), u64()
        need(h in pend_t and pend_t.pop(h) == ln and ln <= 16 * MIB, "unexpected tree")
        b = take(ln) if tag == b"T" else patched(ln, "trees")
        need(sha256(b) == h, "tree hash")
        for e in decode_tree(b):
            if e[1] == 1:
                pend_t[e[2]] = e[3]
            else:
                need(pend_o.setdefault(e[2], e[3]) == e[3], "one address, two sizes")
        ntrees += 1
        tag = take(1)
    need(all(local(hexpath("trees", h)) is not None for h in pend_t), "tree missing from the bundle")
    while tag in (b"O", b"o"):
        h, size = take(32), u64()
        need(h in pend_o and pend_o.pop(h) == size, "unexpected object")
        b = take(size) if tag == b"O" else patched(size, "objects")
        need(object_address(b) == h, "object tampered")
        nobj += 1
        tag = take(1)
    need(tag == b"E", "expected the end record")
    need(u64() == ntrees and u64() == nobj, "end record counts")
    need(pos == len(s), "bytes after the end record")
    need(all(local(hexpath("objects", h)) is not None for h in pend_o), "object missing from the bundle")
    return dict(state=state, base=base, trees=ntrees, objects=nobj)


# --- The checks ------------------------------------------------------------------------


# ---- Search index (FORMAT §15) -------------------------------------------


def fold_char(c, fold):
    o = ord(c)
    if 0xFF01 <= o <= 0xFF5E:
        o -= 0xFEE0
    elif o == 0x3000:
        o = 0x20
    return chr(fold.get(o, o))


def is_cjk(c):
    o = ord(c)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7A3
            or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x323AF)


def is_word(c):
    # Alphabetic or Nd/Nl/No; letters stand in for Alphabetic here (the
    # vectors have no combining marks).
    cat = unicodedata.category(c)
    return cat[0] == "L" or cat in ("Nd", "Nl", "No")


def s_stem(w):
    if len(w) < 4 or not all("a" <= c <= "z" for c in w):
        return w
    if w.endswith("ies") and not w.endswith(("eies", "aies")):
        return w[:-3] + "y"
    if w.endswith("es") and not w.endswith(("aes", "ees", "oes")):
        return w[:-1]
    if w.endswith("s") and not w.endswith(("us", "ss")):
        return w[:-1]
    return w


def tokens(text, fold):
    s = "".join(fold_char(c, fold) for c in text).lower()
    out, word, run = [], [], []

    def end_word():
        if word:
            out.append(s_stem("".join(word[:32])))
            word.clear()

    def end_run():
        if len(run) == 1:
            out.append(run[0])
        run.clear()

    for c in s:
        if is_cjk(c):
            end_word()
            if run:
                out.append(run[-1] + c)
            run.append(c)
        else:
            end_run()
            if is_word(c):
                word.append(c)
            else:
                end_word()
    end_run()
    end_word()
    return out


def decode_search_manifest(b):
    m = cbor_decode(b, 1 << 20)
    fmt, segs = fields(m, 2, "search manifest", versions=(1, 2))
    need(isinstance(segs, list) and 1 <= len(segs) <= 1024, "segments: 1 to 1024")
    names = set()
    out = []
    for seg in segs:
        need(isinstance(seg, list) and len(seg) == 4, "segment: 4 items")
        name, docs, bits, deleted = seg
        check_name(name)
        need(name not in names, "segment listed twice")
        names.add(name)
        need(is_uint(docs) and 1 <= docs <= 1 << 24, "docs out of range")
        need(is_uint(bits) and bits <= 16, "term_bits out of range")
        need(all(is_uint(d) for d in deleted), "deleted: unsigned integers")
        need(all(a < b for a, b in zip(deleted, deleted[1:])), "deleted not strictly ascending")
        need(not deleted or deleted[-1] < docs, "deleted number beyond the segment")
        out.append({"name": name, "docs": docs, "bits": bits, "deleted": set(deleted),
                    "per_shard": DOCS_PER_SHARD[fmt]})
    return out


def decode_search_fold(b):
    pairs = cbor_decode(b, 1 << 20)
    need(isinstance(pairs, list), "fold: an array")
    froms = []
    for p in pairs:
        need(isinstance(p, list) and len(p) == 2 and all(is_uint(x) and x <= 0x10FFFF for x in p), "fold pair")
        froms.append(p[0])
    need(all(a < b for a, b in zip(froms, froms[1:])), "fold not strictly ascending")
    table = dict((a, b) for a, b in pairs)
    need(not any(b in table for b in table.values()), "fold is not idempotent")
    return table


def decode_search_terms(b):
    terms = cbor_decode(b, 16 << 20)
    need(isinstance(terms, list), "term shard: an array")
    out = []
    for t in terms:
        need(isinstance(t, list) and len(t) == 7, "term: 7 items")
        tok, df, k, docs, tdf, tk, title = t
        need(isinstance(tok, str) and 1 <= len(tok.encode()) <= 128, "token length")
        need(is_uint(df) and df >= 1 and is_uint(tdf) and tdf <= df, "df/tdf")
        need(is_uint(k) and k <= 24 and is_uint(tk) and tk <= 24, "k out of range")
        need(isinstance(docs, bytes) and isinstance(title, bytes), "lists are byte strings")
        out.append((tok, df, k, docs, tdf, tk, title))
    toks = [t[0].encode() for t in out]
    need(all(a < b for a, b in zip(toks, toks[1:])), "tokens not strictly ascending")
    return out


def rice_decode(b, n, k, universe):
    bits = "".join(format(x, "08b") for x in b)
    pos, prev, out = 0, -1, []
    for _ in range(n):
        q = 0
        while True:
            need(pos < len(bits), "list ends early")
            bit = bits[pos]
            pos += 1
            if bit == "0":
                break
            q += 1
        need(pos + k <= len(bits), "list ends early")
        low = int(bits[pos:pos + k], 2) if k else 0
        pos += k
        d = prev + 1 + ((q << k) | low)
        need(d < universe, "document number beyond the segment")
        out.append(d)
        prev = d
    need(len(bits) - pos < 8, "bytes after the list")
    need("1" not in bits[pos:], "non-zero padding")
    return out


DOCS_PER_SHARD = {1: 64, 2: 16}  # by search format, FORMAT §15.2


def decode_search_docs(b, shard, docs, per):
    v = cbor_decode(b, 16 << 20)
    want = min(per, docs - shard * per)
    need(isinstance(v, list) and len(v) == want, "document shard: %d documents expected" % want)
    for d in v:
        need(isinstance(d, list) and len(d) == 4 and all(isinstance(x, str) for x in d), "doc: 4 strings")
    return v


def shard_path(n, mx):
    digits = len("%x" % mx)
    return "/".join("%0*x" % (digits, n))


def search_query(get, q, limit=100):
    """Answers q as FORMAT §15.5 says, reading files by path with get()."""
    d = "_samizdat/search/"
    fold = decode_search_fold(get(d + "fold"))
    segs = decode_search_manifest(get(d + "index"))
    toks = []
    for t in tokens(q, fold):
        if t not in toks and len(toks) < 32:
            toks.append(t)
    matches = []
    for si, seg in enumerate(segs):
        lists = []
        for t in toks:
            h = sha256(t.encode())
            s = ((h[0] << 8) | h[1]) >> (16 - seg["bits"])
            terms = decode_search_terms(get(d + seg["name"] + "/terms/" + shard_path(s, (1 << seg["bits"]) - 1)))
            hit = [x for x in terms if x[0] == t]
            if not hit:
                break
            tok, df, k, docs, tdf, tk, title = hit[0]
            lists.append((rice_decode(docs, df, k, seg["docs"]), set(rice_decode(title, tdf, tk, seg["docs"]))))
        if len(lists) != len(toks) or not toks:
            continue
        live = set(lists[0][0])
        for l, _ in lists[1:]:
            live &= set(l)
        for n in live - seg["deleted"]:
            matches.append((sum(1 for _, t in lists if n in t), si, n))
    matches.sort(reverse=True)
    out = []
    for _, si, n in matches[:limit]:
        seg = segs[si]
        per = seg["per_shard"]
        nshards = (seg["docs"] + per - 1) // per
        docs = decode_search_docs(get(d + seg["name"] + "/docs/" + shard_path(n // per, nshards - 1)), n // per, seg["docs"], per)
        out.append(docs[n % per][0])
    return toks, out


def search_checks(vdir, check, name="search"):
    """The vectors of search/ (the format written now) or search-v1/ (format 1, still read)."""
    sdir = os.path.join(vdir, name)
    if not os.path.isdir(sdir):
        return
    exp = json.load(open(os.path.join(sdir, "expected.json"), encoding="utf-8"))

    def get_from(base, replace=None, bad=None):
        def get(rel):
            if rel == replace:
                return bad
            p = os.path.join(base, rel)
            need(os.path.isfile(p), "missing index file " + rel)
            return open(p, "rb").read()
        return get

    good = get_from(os.path.join(sdir, "index"))

    def files():
        for rel, h in exp["files"].items():
            assert object_address(good(rel)).hex() == h, rel

    def toks():
        fold = decode_search_fold(good("_samizdat/search/fold"))
        for t in exp["tokens"]:
            assert tokens(t["text"], fold) == t["tokens"], (t["text"], tokens(t["text"], fold))

    def queries():
        for q in exp["queries"]:
            got = search_query(good, q["query"])
            assert list(got) == [q["tokens"], q["results"]], (q["query"], got)

    check(name + "/files", files)
    check(name + "/tokens", toks)
    check(name + "/queries", queries)
    negatives = os.path.join(sdir, "negative", "list.txt")
    for line in open(negatives, encoding="utf-8") if os.path.isfile(negatives) else []:
        name, target = line.split()
        bad = open(os.path.join(sdir, "negative", name), "rb").read()

        def neg(target=target, bad=bad):
            get = get_from(os.path.join(sdir, "index"), target, bad)
            try:
                decode_search_manifest(get("_samizdat/search/index"))
                decode_search_fold(get("_samizdat/search/fold"))
                for q in exp["queries"]:
                    search_query(get, q["query"])
                if "/terms/" in target:
                    segs = decode_search_manifest(get("_samizdat/search/index"))
                    seg = [s for s in segs if "/%s/" % s["name"] in target][0]
                    for t in decode_search_terms(bad):
                        rice_decode(t[3], t[1], t[2], seg["docs"])
                        rice_decode(t[6], t[4], t[5], seg["docs"])
            except Reject:
                return
            raise AssertionError("accepted")

        check("search/negative/" + name, neg)


def main():
    vdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    passed, failed = [0], [0]

    def check(name, fn):
        try:
            fn()
            passed[0] += 1
        except Exception as e:  # a failed check of any kind is reported, then the next runs
            failed[0] += 1
            print("FAILED %s: %s: %s" % (name, type(e).__name__, e))

    def read(rel):
        p = os.path.join(vdir, rel)
        return open(p, "rb").read() if os.path.isfile(p) else None

    expected = {}
    for line in open(os.path.join(vdir, "expected.txt"), encoding="utf-8"):
        k, _, v = line.rstrip("\n").partition(" = ")
        expected[k] = v
    site = parse_pub(read("publisher.pub").decode())
    repo = lambda rel: read("repo/" + rel)
    good = {}

    def check_repo():
        good["state"] = load(repo, site)
        st = good["state"]
        assert st["id"].hex() == expected["state.2.snapshot.id"], st["id"].hex()
        for path, h, size in st["files"]:
            assert expected["state.2.file." + path].split()[:2] == [h.hex(), str(size)], path

    def check_ids():
        assert site.hex() == expected["site.id"]
        assert fingerprint(site) == expected["site.fingerprint"]
        assert base64.b32decode(expected["site.fingerprint"][3:].upper() + "====") == site
        big = bytes(i % 251 for i in range(40000))
        leaves = [sha256(big[i : i + 16384]) for i in range(0, 40000, 16384)]
        for i, leaf in enumerate(leaves):
            assert leaf.hex() == expected["merkle.big.leaf.%d" % i]
        assert object_address(big).hex() == expected["merkle.big.root"]
        assert object_address(leaves[0] + leaves[1]) == object_address(big[:32768])
        assert object_address(b"").hex() == expected["object.empty"]
        for role in ("root", "keyset", "snapshot", "head"):
            want = expected["signing_prefix." + role]
            assert (b"samizdat-v1/" + role.encode() + b"\x00").hex() == want

    def check_state1():
        # The seq-1 head still verifies against the same repository (its snapshot is kept).
        state1 = load(lambda rel: read("negative/head-rollback") if rel == "head" else repo(rel), site)
        assert state1["id"].hex() == expected["state.1.snapshot.id"]
        assert check_advance(state1, good["state"]) == "newer"
        assert check_advance(good["state"], good["state"]) == "same"

    check("repository", check_repo)
    check("expected values", check_ids)
    check("seq 1 -> seq 2", check_state1)

    for key, val in sorted(expected.items()):
        if not key.startswith("negative."):
            continue
        name, replaces = key[len("negative."):], val.split()[1]

        def neg(name=name, replaces=replaces):
            bad = read("negative/" + name)
            try:
                st = load(lambda rel: bad if rel == replaces else repo(rel), site)
                check_advance(good["state"], st)
            except Reject:
                return
            raise AssertionError("accepted")

        check("negative/" + name, neg)

    def bundles():
        full = read_bundle(read("bundles/full-2.szb"), site, lambda rel: None)
        if full is None:
            print("note: no zstd decoder (module zstandard or command zstd); bundles not checked")
            return
        assert full["state"]["id"] == good["state"]["id"] and full["base"] is None
        delta = read_bundle(read("bundles/delta-1-2.szb"), site, repo)
        assert delta["base"][1].hex() == expected["state.1.snapshot.id"]
        fields_ = expected["bundle.delta"].split()
        assert (delta["trees"], delta["objects"]) == (int(fields_[8]), int(fields_[10]))
        # The same delta with patch records, against seq 1's files (the committed
        # repository also holds seq 1's trees and objects).
        patch = read_bundle(read("bundles/delta-patch-1-2.szb"), site, repo)
        fields_ = expected["bundle.delta_patch"].split()
        assert (patch["trees"], patch["objects"]) == (int(fields_[10]), int(fields_[12]))
        assert patch["state"]["id"] == good["state"]["id"]
        # Without the object a patch builds on, it cannot be applied.
        gone = "objects/%s/%s" % (fields_[20][:2], fields_[20])
        try:
            read_bundle(read("bundles/delta-patch-1-2.szb"), site, lambda rel: None if rel == gone else repo(rel))
            raise AssertionError("a patch without its reference was accepted")
        except Reject:
            pass
        damaged = bytearray(read("bundles/full-2.szb"))
        for bad in (damaged[:-1], damaged + b"\x00", damaged[:8] + b"\x03" + damaged[9:]):
            try:
                read_bundle(bytes(bad), site, lambda rel: None)
            except Reject:
                continue
            raise AssertionError("a damaged bundle was accepted")

    check("bundles", bundles)
    search_checks(vdir, check)
    search_checks(vdir, check, "search-v1")
    print("%d passed, %d failed" % (passed[0], failed[0]))
    return 1 if failed[0] else 0


if __name__ == "__main__":
    sys.exit(main())
