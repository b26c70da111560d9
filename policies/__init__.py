"""The Living Codex CrossGuard policy pack: the runbook's security checklist and production readiness."""
