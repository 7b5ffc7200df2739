"""Operations around the one Decider: configuration, metrics, the decision cache, the decision
log, catalog hot reload and process logging. Imports only the policy core and catalog files."""
