"""Orchestration over a Runner: status, deploy, switch. No transport or interface imports here."""
