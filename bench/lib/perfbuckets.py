#!/usr/bin/env python3
"""Where a profiled process spends, by purpose: reads `perf script -F ip,sym,dso`
output (perf record --call-graph dwarf) on stdin and prints the share of
samples per bucket.

    perf script -i perf.data -F ip,sym,dso | perfbuckets.py [TITLE]

Each sample goes to the bucket of the OUTERMOST frame (walking from the root
towards the leaf) whose symbol matches an OpenSSL rule below: X509_verify_cert
calls ECDSA verification, so its samples count as chain verification, not as
EC arithmetic. Debian's libssl/libcrypto have no symbols for their internal
functions, so the rules use the exported entry points. An OpenSSL bucket is
split by who called: the raft transport (a frame of raft/relay.c or
raft/tlsconn.c on the stack) or the API (a frame of libh2o). Samples without
an OpenSSL frame go to the raft relay when one of its frames is on the stack,
else to the library of their leaf frame (used by bench/tls.sh)."""
import collections
import re
import sys

RULES = [
    (r"^(ASN1_item_d2i|d2i_X509|d2i_PUBKEY|d2i_EC_PUBKEY|X509_PUBKEY|OSSL_DECODER_)",
     "OpenSSL: parsing the peer's certificate (ASN.1 + OSSL_DECODER of its key)"),
    (r"^X509_verify_cert$", "OpenSSL: verifying the peer's chain (incl. ECDSA verify)"),
    (r"^(EVP_DigestVerify|EVP_PKEY_verify|ECDSA_verify|ECDSA_do_verify)",
     "OpenSSL: verifying the peer's handshake signature"),
    (r"^(EVP_DigestSign|EVP_PKEY_sign|ECDSA_sign|ECDSA_do_sign)",
     "OpenSSL: signing our handshake (ECDSA P-256)"),
    (r"^(EVP_PKEY_generate|EVP_PKEY_keygen|EC_KEY_generate_key)", "OpenSSL: ephemeral ECDHE key"),
    (r"^(EVP_PKEY_derive|ECDH_compute_key)", "OpenSSL: ECDH shared secret"),
    (r"^(EVP_PKEY_set1_encoded_public_key|EVP_PKEY_get1_encoded_public_key|EVP_PKEY_fromdata)",
     "OpenSSL: key share encode/decode"),
    (r"^(EVP_Cipher|EVP_Encrypt|EVP_Decrypt|aesni_|aes_gcm|gcm_|ossl_gcm|CRYPTO_gcm)",
     "OpenSSL: record encryption/decryption (AES-GCM)"),
    (r"^(EVP_Digest|EVP_MD_|EVP_KDF|EVP_MAC|HMAC|SHA256|SHA384|EVP_Q_digest)",
     "OpenSSL: hashes and key schedule (transcript, HKDF)"),
    (r"^(X509_free|X509_STORE_CTX|X509_check|X509_get|X509V3_|ASN1_|OPENSSL_sk_)",
     "OpenSSL: certificate objects (free, lookups)"),
    (r"^(SSL_new|SSL_free|SSL_CTX_|SSL_clear|ossl_ssl_connection_free)", "OpenSSL: SSL object setup/teardown"),
    (r"^(BIO_|h2o_socket_ssl)", "TLS glue: BIOs, h2o's TLS socket"),
]
RULES = [(re.compile(p), b) for p, b in RULES]
RAFT = re.compile(r"^(rp_relay|rp_tlsconn_|on_src_read|on_tls_read|send_to|pass|flush_pending)")
DSO_NAMES = [("libcrypto", "OpenSSL libcrypto, other"), ("libssl", "OpenSSL libssl, other"),
             ("kernel", "kernel"), ("libc.so", "libc (malloc, memcpy ...)"), ("libh2o", "h2o"),
             ("libuv", "libuv"), ("libraft", "libraft"), ("libsqlite", "SQLite"),
             ("raftplane", "raftplane itself"), ("libprotobuf", "protobuf-c")]


def frames(block):
    for line in block.strip().split("\n"):
        parts = line.split(None, 1)
        if len(parts) < 2:
            continue
        rest = parts[1]
        m = re.match(r"(.*?)\s+\(([^)]*)\)\s*$", rest)
        sym, dso = (m.group(1), m.group(2)) if m else (rest, "")
        sym = re.sub(r"\+0x[0-9a-f]+$", "", sym.strip())
        yield sym, dso


def main():
    title = sys.argv[1] if len(sys.argv) > 1 else ""
    data = sys.stdin.read()
    counts = collections.Counter()
    total = 0
    for block in data.split("\n\n"):
        fr = list(frames(block))
        if not fr:
            continue
        total += 1
        bucket = None
        for sym, _ in reversed(fr):  # root first
            for rx, b in RULES:
                if rx.search(sym):
                    bucket = b
                    break
            if bucket:
                break
        raft = any(RAFT.search(sym) for sym, _ in fr)
        if bucket:
            if raft:
                bucket += " [raft]"
            elif any("libh2o" in dso for _, dso in fr):
                bucket += " [API]"
        elif raft:
            bucket = "raft relay: copying and inspecting (raft/relay.c)"
        else:
            dso = fr[0][1]
            bucket = next((n for k, n in DSO_NAMES if k in dso), "other (" + dso.rsplit("/", 1)[-1] + ")")
            if dso.endswith(("libcrypto.so.3", "libssl.so.3")) and any("libh2o" in d for _, d in fr):
                bucket += " [API]"
        counts[bucket] += 1
    if title:
        print("-- " + title)
    print(f"   {total} samples")
    for b, n in counts.most_common():
        if 100 * n / max(total, 1) >= 0.5:
            print(f"  {100 * n / total:5.1f}%  {b}")


if __name__ == "__main__":
    main()
