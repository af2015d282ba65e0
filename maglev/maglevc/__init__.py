"""maglevc: the operator's shell for maglevd."""
