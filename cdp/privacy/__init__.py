"""Privacy: GDPR erasure (`cdp forget`, cdp.privacy.erasure) and PII protection of the BI copies (cdp.privacy.pii)."""
