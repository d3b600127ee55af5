"""Pure domain logic: parsing, models and decisions, with no I/O."""
