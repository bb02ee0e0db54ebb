"""Files of a public Google Drive folder (where Hara et al. publish their Kinetics checkpoints).

Google Drive has no documented anonymous API, so this follows what gdown (https://github.com/wkentaro/gdown,
``download_folder.py`` and ``download.py``), the tool most projects use for it, reads from the web pages:

- a folder's page, ``{base}/drive/folders/<id>``, carries its listing in a script as
  ``window['_DRIVE_ivd'] = '<JSON, JavaScript-escaped>'``; each entry is ``[id, parents, name, mime type, ...]``;
- ``{base}/uc?export=download&id=<id>`` answers a small file itself (``Content-Disposition: attachment``);
  for a large one it answers a page saying it cannot be scanned for viruses, with a form
  (``id="download-form" action="https://drive.usercontent.google.com/download"`` and hidden ``id``, ``export``,
  ``confirm``, ``uuid`` fields) whose submission is the file, or, in older pages, a link
  ``href="/uc?export=download&confirm=..."``, or a ``"downloadUrl"``; a page with ``uc-error-subcaption``
  says why it will not (the file's daily quota, say).

``{base}`` is https://drive.google.com, or a mirror (``--gdrive-url`` or ``AVEMO_GDRIVE_URL``).
"""

from __future__ import annotations

import html
import json
import os
import re
from urllib.parse import urlencode, urljoin

from avemo.fetch.http import FetchError, Retry, check_scheme, get_bytes

GDRIVE = "https://drive.google.com"
GDRIVE_ENV = "AVEMO_GDRIVE_URL"
FOLDER_MIME = "application/vnd.google-apps.folder"
_IVD = re.compile(r"_DRIVE_ivd'\]\s*=\s*'((?:[^'\\]|\\.)*)'", re.S)
_FORM = re.compile(r'<form[^>]*id="download-form"[^>]*action="([^"]+)"[^>]*>(.*?)</form>', re.S)
_INPUT = re.compile(r'<input[^>]*type="hidden"[^>]*>')
_ATTR = re.compile(r'(name|value)="([^"]*)"')


def gdrive_base(url: str | None) -> str:
    named = url or os.environ.get(GDRIVE_ENV)
    base = (named or GDRIVE).rstrip("/")
    check_scheme(base, explicit=named is not None)
    return base


def folder_files(base: str, folder: str, retry: Retry = Retry()) -> dict[str, str]:
    """{file name: file id} of a shared folder's files (not its sub-folders)."""
    url = f"{base}/drive/folders/{folder}"
    page, _ = get_bytes(url, retry)
    match = _IVD.search(page.decode("utf-8", "replace"))
    if match is None:
        raise FetchError(f"{url}: Google Drive sent no file list (the folder may have moved, or Drive changed its "
                         "page); download the file in a browser and pass its path")
    try:
        listing = json.loads(match.group(1).encode("utf-8").decode("unicode_escape"))
        entries = listing[0] or []
        return {str(e[2]): str(e[0]) for e in entries if e[3] != FOLDER_MIME}
    except (ValueError, IndexError, TypeError, UnicodeDecodeError):
        raise FetchError(f"{url}: cannot read Google Drive's file list; download the file in a browser and pass "
                         "its path") from None


def download_url(base: str, file_id: str, retry: Retry = Retry()) -> str:
    """The address that serves the file itself, past the confirmation page of large files."""
    url = f"{base}/uc?export=download&id={file_id}"
    for _ in range(3):  # a confirmation page, then perhaps a second one
        page, headers = get_bytes(url, retry, limit=4 << 20, headers={"Range": "bytes=0-0"})
        if "attachment" in headers.get("content-disposition", "") or "text/html" not in headers.get("content-type", ""):
            return url
        text = page.decode("utf-8", "replace")
        if form := _FORM.search(text):
            fields = {}
            for tag in _INPUT.findall(form.group(2)):
                attrs = dict(_ATTR.findall(tag))
                if "name" in attrs:
                    fields[attrs["name"]] = html.unescape(attrs.get("value", ""))
            action = html.unescape(form.group(1))
            url = urljoin(url, action) + ("&" if "?" in action else "?") + urlencode(fields)
        elif link := re.search(r'href="(/uc\?export=download[^"]+)"', text):
            url = urljoin(url, html.unescape(link.group(1)))
        elif direct := re.search(r'"downloadUrl":"([^"]+)"', text):
            url = direct.group(1).replace("\\u003d", "=").replace("\\u0026", "&")
        else:
            why = re.search(r'<p class="uc-error-subcaption">(.*?)</p>', text, re.S)
            raise FetchError(f"{base}: Google Drive will not serve file {file_id}"
                             + (f" ({html.unescape(re.sub('<[^>]+>', '', why.group(1))).strip()})" if why else "")
                             + "; try later, or download it in a browser and pass its path")
        check_scheme(url, explicit=base.startswith("http://"))  # https, unless the user named a plain-http mirror
    raise FetchError(f"{base}: Google Drive asked for confirmation again and again for file {file_id}; download it "
                     "in a browser and pass its path")
