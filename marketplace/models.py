"""Import every mapped class so SQLAlchemy and Alembic see the whole schema, and the search
index's session hooks and cache declarations (its tables are written by hand, not mapped), so that
every app and command keeps the index in step with the listings."""

from marketplace.accounts.models import (  # noqa: F401
    ApiToken,
    Invitation,
    Membership,
    OneTimeToken,
    Organisation,
    OrganisationClassification,
    RecoveryCode,
    User,
)
from marketplace.accreditation.models import (  # noqa: F401, E402
    Answer,
    Application,
    ApplicationArea,
    ApplicationLot,
    Arrangement,
    ArrangementLot,
    ClarificationRequest,
    ConflictDeclaration,
    Criterion,
    EvidenceFile,
    LotMembership,
    RedeclarationRequest,
)
from marketplace.catalogue.models import (  # noqa: F401, E402
    CapacityCommitment,
    Listing,
    ListingArea,
    ListingPrice,
)
from marketplace.catalogue.search import hooks  # noqa: F401, E402 (the search index's upkeep)
from marketplace.competitions.models import (  # noqa: F401, E402
    AssessmentSummary,
    Bid,
    BidAnswer,
    BidPriceLine,
    Clarification,
    Competition,
    CompetitionArea,
    CompetitionDocument,
    CompetitionEvaluator,
    CompetitionFunder,
    CompetitionQuestion,
    ConsortiumMember,
    EvaluatorScore,
    InvitedProvider,
    ModeratedScore,
    SocialValueCommitment,
)
from marketplace.core.audit import AuditEvent  # noqa: F401
from marketplace.core.cache import CacheGeneration  # noqa: F401
from marketplace.core.notifications.models import Notification  # noqa: F401
from marketplace.core.scheduler.models import ScheduledJobRun  # noqa: F401
from marketplace.funding.models import BudgetChange  # noqa: F401
from marketplace.insight.models import (  # noqa: F401
    PlannedProcurement,
    SpendEntry,
    SpendHalfYear,
    SpendMonth,
    SpendProviderYear,
    SpendStaleCallOff,
    SpendYear,
)
from marketplace.invoices.models import Invoice, InvoiceCounter, InvoiceLine  # noqa: F401
from marketplace.orders.models import (  # noqa: F401
    Budget,
    CallOff,
    CallOffFunder,
    Delivery,
    FundingAuthorisation,
    IdempotencyRecord,
    OutcomeRecord,
    Variation,
)
from marketplace.outcomes.models import OutcomeClaim, OutcomeTerm  # noqa: F401
from marketplace.payments.models import (  # noqa: F401
    CardPayment,
    CardRefund,
    StripeCustomer,
    StripeEvent,
)
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory  # noqa: F401
