from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends
from starlette.requests import HTTPConnection

from livestage.tracking.inbox import Ingestion


async def get_ingestion(connection: HTTPConnection) -> Ingestion:
    return cast(Ingestion, connection.app.state.livestage.ingestion)


IngestionDep = Annotated[Ingestion, Depends(get_ingestion)]
