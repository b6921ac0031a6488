"""Pages, one module per concern: common, counter, documents, review, compliance, accounts,
operations."""
