import pytest

from carebell.interop.hl7.models import Hl7Sender
from tests import factories


@pytest.fixture
def clinic(site):
    """The test clinic takes every HL7 sender (a catch-all row)."""
    Hl7Sender.objects.create(site=site)
    return site


@pytest.fixture
def barts(org):
    uk = factories.make_site(org, name="Royal London Renal", time_zone="Europe/London",
                             phone_region="GB")  # fmt: skip
    Hl7Sender.objects.create(sending_application="BLT_TIE", sending_facility="BLT", site=uk)
    return uk


@pytest.fixture
def pharmacy_feed(pharmacy):
    Hl7Sender.objects.create(sending_application="IMMAPP", site=pharmacy)
    return pharmacy
