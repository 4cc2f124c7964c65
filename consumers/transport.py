"""Airlines and railways: no flights or high-speed trains. For a listed organisation the restriction
falls on its legal representative, who is the one buying tickets."""

from hub.domain.sanctions import AgencyPolicy

POLICY = AgencyPolicy(
    name="transport",
    person_measures=("AIR_TRAVEL_RESTRICTED", "HIGH_SPEED_RAIL_RESTRICTED"),
    org_measures=("AIR_TRAVEL_RESTRICTED", "HIGH_SPEED_RAIL_RESTRICTED"),
    org_subject="LEGAL_REPRESENTATIVE",
)
