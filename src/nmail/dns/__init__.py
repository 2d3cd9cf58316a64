"""DNS for mail routing: MX/A/AAAA lookups with a TTL cache (`nmail.dns.resolver`)."""
