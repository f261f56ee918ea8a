"""CRM sync: commands on ``crm.commands`` -> a CRM's HTTP API, rate limited, batched, ordered, idempotent."""
