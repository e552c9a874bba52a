"""The pure model: entities, value objects, rules. Standard library only."""
