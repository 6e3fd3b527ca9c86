"""job_svc's copy of a dataset (services.job_svc.dataset_facts): what it keeps of an event's dataset
estimates exactly as the dataset dataset_svc answers; events it cannot order are refused."""

import uuid
from types import SimpleNamespace

import pytest
from google.protobuf import struct_pb2

from brightrun.dataset.v1 import dataset_pb2
from services.common.errors import NotFound
from services.common.events import Unappliable
from services.common.gpu_catalogue import CATALOGUE
from services.job_svc.dataset_facts import dataset_of, facts_of
from services.job_svc.estimate import estimate


def _dataset(**statistics) -> dataset_pb2.Dataset:
    stats = struct_pb2.Struct()
    stats.update({"trained_tokens": 9000, "histogram": {"p50": 12}, **statistics})
    dataset = dataset_pb2.Dataset(id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), name="chats",
                                  status=dataset_pb2.DATASET_STATUS_READY, total_tokens=12345, statistics=stats)
    dataset.updated_at.FromSeconds(1_800_000_000)
    return dataset


def _row(facts: dict) -> SimpleNamespace:
    """The row store.estimate_inputs reads back for ``facts``."""
    return SimpleNamespace(**facts)


@pytest.mark.parametrize("dataset", [
    _dataset(conversations=41, validation_conversations=3),
    _dataset(conversations=41),
    _dataset(),  # not validated: the estimate's assumed size
    dataset_pb2.Dataset(id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), name="new", updated_at={"seconds": 5}),
])
def test_the_copy_estimates_as_the_dataset_itself(dataset):
    gpu = CATALOGUE.gpus["H100"]
    copy = dataset_of(_row(facts_of(dataset)))
    assert copy.name == dataset.name and copy.status == dataset.status
    for batch_size, epochs in ((1, 1), (4, 3), (64, 2)):
        assert (estimate(gpu, 1, copy.statistics, copy.total_tokens, batch_size, epochs)
                == estimate(gpu, 1, dataset.statistics, dataset.total_tokens, batch_size, epochs))


def test_a_deleted_dataset_is_not_found():
    deleted = _dataset(conversations=2)
    deleted.deleted_at.FromSeconds(1_800_000_001)
    with pytest.raises(NotFound, match="Dataset not found or access denied"):
        dataset_of(_row(facts_of(deleted)))


@pytest.mark.parametrize("change", [
    lambda d: d.ClearField("updated_at"),  # nothing to order it by
    lambda d: setattr(d, "id", "not-a-uuid"),
    lambda d: setattr(d, "user_id", ""),
])
def test_a_dataset_that_cannot_be_ordered_or_owned_is_unappliable(change):
    dataset = _dataset(conversations=2)
    change(dataset)
    with pytest.raises(Unappliable):
        facts_of(dataset)
