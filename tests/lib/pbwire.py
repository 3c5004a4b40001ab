"""Protobuf by hand for the tests (net/raftplane.proto field numbers are the
callers'): encoders that can write anything, legal or not, and a strict
decoder of one message level. Standard library only.

- varint(n): base-128 varint.
- f_uint(field, v): a varint field, left out when v is 0 (proto3 default);
  f_uint_always(field, v) writes it even when 0.
- f_bytes(field, b): a length-delimited field (str is UTF-8 encoded), written
  even when empty (an embedded message may be empty); f_str(field, s) leaves
  an empty one out.
- f_packed(field, values): packed repeated varints, left out when empty.
- decode(b): {field number: [values]} with ints for varint, fixed64 and
  fixed32 fields and bytes for length-delimited ones; raises ValueError on
  a truncated or over-long varint, a truncated field or an unknown wire type.
"""


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_uint_always(field, v):
    return varint(field << 3) + varint(v)


def f_uint(field, v):
    return f_uint_always(field, v) if v else b""


def f_bytes(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(field << 3 | 2) + varint(len(b)) + b


def f_str(field, s):
    return f_bytes(field, s) if s else b""


def f_packed(field, values):
    values = list(values)
    return f_bytes(field, b"".join(varint(v) for v in values)) if values else b""


def read_varint(b, i):
    """(value, next index) of the varint at b[i]."""
    n = shift = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i
        if shift >= 70:
            raise ValueError("varint too long")


def decode(b):
    fields, i = {}, 0
    while i < len(b):
        tag, i = read_varint(b, i)
        no, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = read_varint(b, i)
        elif wt == 2:
            n, i = read_varint(b, i)
            v = bytes(b[i:i + n])
            if len(v) != n:
                raise ValueError("truncated field %d" % no)
            i += n
        elif wt in (1, 5):
            size = 8 if wt == 1 else 4
            if i + size > len(b):
                raise ValueError("truncated field %d" % no)
            v, i = int.from_bytes(b[i:i + size], "little"), i + size
        else:
            raise ValueError("wire type %d" % wt)
        fields.setdefault(no, []).append(v)
    return fields
