"""TXT rdata helpers: join character-strings, decode, and pick the records of one protocol.

A TXT record is a list of character-strings of at most 255 bytes each. Long SPF and DKIM records
are split by their publishers across several strings, and RFC 7208 3.3 (repeated by RFC 6376
3.6.2.2 for DKIM) says the strings are concatenated *without* adding spaces. Joining with a space,
as some tools do, silently changes `p=` keys and SPF terms that were split mid-token.
"""

from __future__ import annotations

from collections.abc import Iterable

from watchtower.parsers import ParseError

__all__ = ["join_txt", "select_records"]


def join_txt(strings: Iterable[bytes]) -> str:
    """Concatenate the character-strings of one TXT rdata and decode them as UTF-8.

    Raises ParseError naming the byte offset when the bytes are not UTF-8: a record that cannot
    be decoded cannot be a valid SPF/DMARC/DKIM record (all of them are ASCII grammars), and
    replacing bytes would hide what the publisher actually put in DNS.
    """
    parts: list[bytes] = []
    for part in strings:
        if not isinstance(part, bytes | bytearray | memoryview):
            raise ParseError(f"TXT character-strings must be bytes, not {type(part).__name__}")
        parts.append(bytes(part))
    data = b"".join(parts)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 4]
        raise ParseError(
            f"TXT record is not valid UTF-8 (byte {bad[:1]!r} at offset {exc.start})",
            position=exc.start,
        ) from None


def select_records(
    records: Iterable[str],
    version_tag: str,
    *,
    terminators: str = " ",
    case_sensitive: bool = False,
) -> list[str]:
    """The records that start with `version_tag` followed by a terminator or the end.

    This is the discovery rule of RFC 7208 4.5 (`v=spf1` then SP or end: `v=spf10` is not SPF)
    and, with other arguments, of DMARC (`v=DMARC1` then `;`, space or end), MTA-STS and
    TLS-RPT (`v=STSv1;`, case-sensitive). Records that do not match belong to someone else and
    are not errors; callers count the matches to judge "none" and "more than one".
    """
    out: list[str] = []
    n = len(version_tag)
    want = version_tag if case_sensitive else version_tag.lower()
    for record in records:
        head = record[:n] if case_sensitive else record[:n].lower()
        if head != want:
            continue
        if len(record) == n or record[n] in terminators:
            out.append(record)
    return out
