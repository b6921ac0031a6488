"""Forms, one module per concern: counter, documents, review, compliance, accounts; common
choices in common."""
