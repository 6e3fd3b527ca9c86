"""The Hugging Face hub, asked whether a model id exists and is gated. Used
only where the hub is reachable (BRIGHTRUN_HUB_CHECK=on); nothing is downloaded."""

from __future__ import annotations

from services.job_svc.launch_checks import HubLookup, HubModel

TIMEOUT_SECONDS = 5.0


def hub_lookup(token: str) -> HubLookup:
    """A lookup with ``token`` (empty: anonymous); it raises OSError when the hub cannot answer."""

    def lookup(model_id: str) -> HubModel:
        from huggingface_hub import model_info
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

        try:
            info = model_info(model_id, token=token or False, timeout=TIMEOUT_SECONDS)
        except GatedRepoError:  # a subclass of RepositoryNotFoundError: first
            return HubModel(exists=True, gated=True)
        except RepositoryNotFoundError:
            return HubModel(exists=False)
        except Exception as exc:  # network errors come as httpx's or OSError's, depending on the version
            raise OSError(f"{type(exc).__name__}: {exc}") from exc
        return HubModel(exists=True, gated=bool(info.gated))

    return lookup
