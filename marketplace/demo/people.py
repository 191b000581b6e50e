"""Who is in the demo world: the organisations and the people, one password for all.

Every demo account uses the one password ``DEMO_PASSWORD``; accounts whose role needs
two-factor authentication (authority admin, assessor) share the TOTP secret
``DEMO_TOTP_SECRET``, which a person can type into any authenticator app. The data are
fictional: the organisations are invented, the charity and company numbers only have the
right shape, and every email address is on ``DEMO_EMAIL_DOMAIN`` (``.example`` is reserved
and never delivers mail).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from marketplace.accounts.models import OrganisationType, Role

DEMO_PASSWORD = "rehab-demo-2026-marketplace"
# Base32 (A–Z, 2–7), 32 characters = 160 bits, as authenticator apps expect.
DEMO_TOTP_SECRET = "DEMOREHABMARKETPLACETOTPSECRETAA"
DEMO_EMAIL_DOMAIN = "demo.example"
DEMO_AUTHORITY_NAME = "HMPPS Commissioning"

# Short names for the sign-in table, so it fits a terminal.
TYPE_SHORT_LABELS = {
    OrganisationType.AUTHORITY: "Authority",
    OrganisationType.PROBATION_REGION: "Probation region",
    OrganisationType.NPS: "NPS",
    OrganisationType.CRC: "CRC",
    OrganisationType.PCC: "PCC",
    OrganisationType.PRISON: "Prison",
    OrganisationType.OTHER_COMMISSIONER: "Other commissioner",
    OrganisationType.PROVIDER_VCSE: "Provider (VCSE)",
    OrganisationType.PROVIDER_PRIVATE: "Provider (private)",
    OrganisationType.PROVIDER_PUBLIC: "Provider (public)",
}

ROLE_ORDER = [
    Role.AUTHORITY_ADMIN,
    Role.ASSESSOR,
    Role.BUYER,
    Role.APPROVER,
    Role.PROVIDER_ADMIN,
    Role.PROVIDER_EDITOR,
]


@dataclass(frozen=True)
class DemoOrganisation:
    key: str
    name: str
    type: OrganisationType
    region_code: str | None = None
    pcc_area_code: str | None = None
    charity_number: str | None = None
    companies_house_number: str | None = None


@dataclass(frozen=True)
class DemoUser:
    local_part: str
    name: str
    roles: dict[str, tuple[Role, ...]] = field(default_factory=dict)  # organisation key → roles

    @property
    def email(self) -> str:
        return f"{self.local_part}@{DEMO_EMAIL_DOMAIN}"


AUTHORITY = DemoOrganisation("authority", DEMO_AUTHORITY_NAME, OrganisationType.AUTHORITY)

COMMISSIONERS = [
    # Probation service regions
    DemoOrganisation(
        "pdu-nw", "Probation Service – North West", OrganisationType.PROBATION_REGION, "B"
    ),
    DemoOrganisation(
        "pdu-gm", "Probation Service – Greater Manchester", OrganisationType.PROBATION_REGION, "L"
    ),
    DemoOrganisation(
        "pdu-wales", "Probation Service – Wales", OrganisationType.PROBATION_REGION, "D"
    ),
    DemoOrganisation(
        "pdu-london", "Probation Service – London", OrganisationType.PROBATION_REGION, "J"
    ),
    DemoOrganisation(
        "pdu-yh",
        "Probation Service – Yorkshire and the Humber",
        OrganisationType.PROBATION_REGION,
        "C",
    ),
    DemoOrganisation(
        "pdu-sw", "Probation Service – South West", OrganisationType.PROBATION_REGION, "G"
    ),
    # Police and Crime Commissioners (the region follows from the PCC area)
    DemoOrganisation(
        "pcc-lancs",
        "Police and Crime Commissioner for Lancashire",
        OrganisationType.PCC,
        pcc_area_code="lancashire",
    ),
    DemoOrganisation(
        "pcc-merseyside",
        "Police and Crime Commissioner for Merseyside",
        OrganisationType.PCC,
        pcc_area_code="merseyside",
    ),
    DemoOrganisation(
        "pcc-south-wales",
        "Police and Crime Commissioner for South Wales",
        OrganisationType.PCC,
        pcc_area_code="south-wales",
    ),
    DemoOrganisation(
        "pcc-avon",
        "Police and Crime Commissioner for Avon and Somerset",
        OrganisationType.PCC,
        pcc_area_code="avon-and-somerset",
    ),
    # A prison and another public body that buy through the same arrangements
    DemoOrganisation("hmp-styal", "HMP & YOI Styal", OrganisationType.PRISON, "B"),
    DemoOrganisation(
        "lancs-public-health",
        "Lancashire County Council – Public Health",
        OrganisationType.OTHER_COMMISSIONER,
        "B",
    ),
]

VCSE = OrganisationType.PROVIDER_VCSE
PROVIDERS = [
    DemoOrganisation(
        "northern-lights", "Northern Lights Housing Trust", VCSE, "B", charity_number="1123456"
    ),
    DemoOrganisation(
        "second-chances", "Second Chances Employment Project", VCSE, "L", charity_number="1098765"
    ),
    DemoOrganisation(
        "harbour-debt", "Harbour Debt Advice Centre", VCSE, "D", charity_number="1145672"
    ),
    DemoOrganisation(
        "pathways", "Pathways Recovery Community", VCSE, "C", charity_number="1067834"
    ),
    DemoOrganisation(
        "womens-circle", "Women's Circle Centres", VCSE, "J", charity_number="1154321"
    ),
    DemoOrganisation("open-door", "Open Door Mentoring", VCSE, "G", charity_number="1172039"),
    DemoOrganisation("bridgeway", "Bridgeway Family Support", VCSE, "B", charity_number="1087423"),
    DemoOrganisation(
        "clean-slate", "Clean Slate Education Trust", VCSE, "J", charity_number="1139087"
    ),
    DemoOrganisation("rebuild-cymru", "Rebuild Lives Cymru", VCSE, "D", charity_number="1160524"),
    DemoOrganisation("anchor", "Anchor Recovery Housing", VCSE, "A", charity_number="1049872"),
    DemoOrganisation(
        "steps-forward", "Steps Forward Peer Mentoring", VCSE, "E", charity_number="1178045"
    ),
    DemoOrganisation("restore", "Restore Restorative Justice", VCSE, "K", charity_number="1126790"),
    DemoOrganisation("unity", "Unity Mentoring Network", VCSE, "E", charity_number="1158263"),
    DemoOrganisation("young-futures", "Young Futures 18–25", VCSE, "F", charity_number="1182436"),
    DemoOrganisation("thrive", "Thrive Emotional Wellbeing", VCSE, "H", charity_number="1104357"),
    DemoOrganisation(
        "common-ground", "Common Ground Social Inclusion", VCSE, "I", charity_number="519283"
    ),
    DemoOrganisation(
        "kinship", "Kinship Carers Support Network", VCSE, "F", charity_number="1093746"
    ),
    DemoOrganisation("victim-voice", "Victim Voice Support", VCSE, "K", charity_number="1167391"),
    DemoOrganisation(
        "lifeline-debt", "Lifeline Debt and Benefits Advice", VCSE, "L", charity_number="1131209"
    ),
    # Scottish-registered charities working across the border
    DemoOrganisation("caledonian", "Caledonian Pathways", VCSE, "A", charity_number="SC045678"),
    DemoOrganisation(
        "borders-recovery", "Borders Recovery Network", VCSE, "B", charity_number="SC039812"
    ),
    # Private and public sector providers
    DemoOrganisation(
        "ascend",
        "Ascend Employment Services Ltd",
        OrganisationType.PROVIDER_PRIVATE,
        "J",
        companies_house_number="09876543",
    ),
    DemoOrganisation(
        "keystone",
        "Keystone Accommodation Solutions Ltd",
        OrganisationType.PROVIDER_PRIVATE,
        "E",
        companies_house_number="11223344",
    ),
    DemoOrganisation(
        "nw-liaison",
        "North West Community Health – Liaison and Diversion",
        OrganisationType.PROVIDER_PUBLIC,
        "B",
    ),
]

B, A = Role.BUYER, Role.APPROVER
USERS = [
    # The contracting authority (both roles need two-factor authentication)
    DemoUser("authority.admin", "Amara Okafor", {"authority": (Role.AUTHORITY_ADMIN,)}),
    DemoUser("assessor", "Tom Whitfield", {"authority": (Role.ASSESSOR,)}),
    # Probation: a buyer and an approver in the North West, approvers elsewhere
    DemoUser("buyer", "Priya Shah", {"pdu-nw": (B,)}),
    DemoUser("approver", "Gareth Lloyd", {"pdu-nw": (A,)}),
    DemoUser("buyer.london", "Kemi Adebayo", {"pdu-london": (B,)}),
    DemoUser("approver.london", "Daniel Cohen", {"pdu-london": (A,)}),
    DemoUser("buyer.wales", "Rhian Evans", {"pdu-wales": (B,)}),
    DemoUser("approver.wales", "Owain Price", {"pdu-wales": (A,)}),
    DemoUser("approver.gm", "Sarah Connolly", {"pdu-gm": (A,)}),
    DemoUser("approver.yh", "Imran Hussain", {"pdu-yh": (A,)}),
    DemoUser("approver.sw", "Lucy Penrose", {"pdu-sw": (A,)}),
    # Police and Crime Commissioners
    DemoUser("pcc.buyer", "Hannah Brooks", {"pcc-lancs": (B,)}),
    DemoUser("pcc.approver", "Michael Turner", {"pcc-lancs": (A,)}),
    DemoUser("pcc.lead", "Joanne Kelly", {"pcc-merseyside": (B, A)}),
    DemoUser("approver.south-wales-pcc", "Carys Morgan", {"pcc-south-wales": (A,)}),
    DemoUser("approver.avon-pcc", "Ben Hartley", {"pcc-avon": (A,)}),
    # A prison and a council
    DemoUser("prison.buyer", "Angela Norris", {"hmp-styal": (B, A)}),
    DemoUser("council.approver", "Steve Ashworth", {"lancs-public-health": (A,)}),
    # Someone who co-commissions for probation and a PCC, and switches between them
    DemoUser("co.commissioner", "Rachel Adeyemi", {"pdu-nw": (B,), "pcc-lancs": (B,)}),
    # Providers: an admin and an editor in one charity, admins in others
    DemoUser("provider.admin", "Chloe Bennett", {"northern-lights": (Role.PROVIDER_ADMIN,)}),
    DemoUser("provider.editor", "Liam Foster", {"northern-lights": (Role.PROVIDER_EDITOR,)}),
    DemoUser("admin.second-chances", "Marcus Reid", {"second-chances": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.harbour", "Siân Roberts", {"harbour-debt": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.pathways", "Nadia Iqbal", {"pathways": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.womens-circle", "Grace Mensah", {"womens-circle": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.open-door", "Peter Walsh", {"open-door": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.caledonian", "Fiona MacLeod", {"caledonian": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.ascend", "James Whitaker", {"ascend": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.nw-liaison", "Dr Aisha Rahman", {"nw-liaison": (Role.PROVIDER_ADMIN,)}),
    # A trustee who runs two small charities, and switches between them
    DemoUser(
        "trustee",
        "Margaret Doyle",
        {"bridgeway": (Role.PROVIDER_ADMIN,), "borders-recovery": (Role.PROVIDER_ADMIN,)},
    ),
]
