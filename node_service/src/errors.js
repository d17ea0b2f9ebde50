// An error that maps 1:1 onto an HTTP answer `{"error": code, "message": text, ...extra}`.
export class ApiError extends Error {
  constructor(status, code, message, headers = {}, extra = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
    // Extra body fields, e.g. tenant_id on answers a prober judges (409/410 of /qr), so the
    // caller can tell that the right tenant's server answered.
    this.extra = extra;
  }
}
