from services.artifact_svc.server import start
from services.common.runtime import run_main

run_main("artifact_svc", start)
