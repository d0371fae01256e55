"""Open311 GeoReport v2 facade (Open311 接口) under ``/intake/open311/v2/``.

A stock Open311 client can file a petition (信访件) and read it back.  Every path
ends in ``.json`` or ``.xml``; errors are Open311's list ``[{"code", "description"}]``
(XML: ``<errors><error><code/><description/></error></errors>``), never the JSON
envelope of the native API.

Endpoints (``{f}`` = json | xml)
    GET  discovery.{f}                     public
    GET  services.{f}?jurisdiction_id=     public
    GET  services/{service_code}.{f}       public; 404 for an unknown code
    POST requests.{f}                      api_key; form-encoded
    GET  requests.{f}                      api_key
    GET  requests/{service_request_id}.{f} api_key
    GET  tokens/{token}.{f}                api_key

Mapping decisions
- Services are the content categories (内容分类): ``service_code`` = category code,
  first level (``03``) and second level (``0301``); ``service_name`` = its name;
  ``group`` = the first-level name; ``keywords`` = the newer category names folded
  into a first-level code; ``type`` = ``batch`` (petitions are handled over days);
  ``metadata`` = true, every definition listing the attributes below.
- ``jurisdiction_id`` is a region code (行政区划代码).  This endpoint serves many
  jurisdictions, so it is required on every method but discovery (400 when
  missing or unknown).  With an api_key it must lie inside the key's
  jurisdiction (403 otherwise); reads are limited to petitions whose problem
  location lies inside ``jurisdiction_id``.
- ``api_key`` is read by ``intake_svc.apikeys`` (form field or query parameter,
  or the ``X-API-Key`` header); a bearer token of a registrar works too.  A
  missing or invalid key is 401 (Open311 suggests 403 for an invalid key; we
  keep HTTP's 401 for "who are you" and use 403 for "not yours").
- Attributes (all ``variable``): ``region_code`` string, 问题属地, required unless
  ``jurisdiction_id`` is itself a county or below (then it is the default);
  ``purpose`` singlevaluelist 求决/申诉/检举控告/建议意见/其他, required;
  ``channel`` singlevaluelist of the channels, default 网上信访; ``title`` string,
  default the first 30 characters of description; ``id_number`` string (the main
  petitioner's; required for 网上信访 and 来访 unless anonymous); ``anonymous``
  singlevaluelist true/false; ``people_count`` number; ``county_no`` string, the
  county system's own number, making resends idempotent (same
  service_request_id, nothing new stored, HTTP 200 instead of 201);
  ``petitioned_at`` datetime, default now.  Unknown attributes are a 400.
- POST fields: ``description`` -> 诉求 (request_text, required);
  ``last_name`` + ``first_name`` -> the main petitioner's name, joined without a
  space (Chinese order: 姓 then 名); ``phone`` -> phone; ``address_string`` -> the
  petitioner's address.  ``lat``/``long``, ``address_id``, ``email``,
  ``device_id``, ``account_id`` and ``media_url`` are accepted and ignored: the
  problem location is ``region_code``, and we keep no accounts or media.  The
  registering system is the api_key's system.
- Response of POST: ``[{service_request_id, token, service_notice, account_id}]``:
  ``service_request_id`` = the display number (信访件编号), ``token`` = the
  petition's immutable id; ``tokens/{token}`` answers at once because
  registration is synchronous.
- Validation failures (``PetitionInSchema`` and the attribute checks) are one 400
  with one ``{code: 400, description: "<parameter>: <reason>"}`` per failing
  parameter, named as the client sent it (``description``,
  ``attribute[purpose]``, ``first_name/last_name``...).  Nothing is stored on any
  error.
- Requests as read: ``status`` = closed when the case status is 已办结, 已存档,
  终结, 复核已完成, 不再受理 or 不予受理, open otherwise; ``status_notes`` = the case
  status (已登记 before any); ``service_name``/``service_code`` = the category;
  ``description`` = 诉求; ``agency_responsible`` = null (unknown at intake);
  ``requested_datetime`` = 登记时间; ``updated_datetime`` = the last case change or
  登记时间; ``address`` = the name of the problem location (not the
  petitioner's).  No personal data of any petitioner is ever returned.
- GET requests: ``service_request_id`` (comma list) overrides the other filters;
  ``service_code`` and ``status`` take comma lists; ``start_date``/``end_date``
  are w3 datetimes with a timezone on 登记时间, the range at most 90 days,
  default the last 90 days; at most 1000 results, newest first.
"""
from __future__ import annotations

from intake_svc.open311.api import blp, open_paths
from intake_svc.open311.render import install

__all__ = ["blp", "install", "open_paths"]
