"""The compliance ledger: every event stored once in a hash chain, and every breach of the rules named."""
