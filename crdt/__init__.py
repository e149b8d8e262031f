"""Pure CRDT layer of syncd: wire codecs, update helpers and document schemas. No I/O here."""
