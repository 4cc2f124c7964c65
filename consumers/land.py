"""Land and housing: no property purchases; organisations may not bid for land either."""

from hub.domain.sanctions import AgencyPolicy

POLICY = AgencyPolicy(
    name="land",
    person_measures=("PROPERTY_PURCHASE_RESTRICTED",),
    org_measures=("LAND_BIDDING_RESTRICTED", "PROPERTY_PURCHASE_RESTRICTED"),
)
