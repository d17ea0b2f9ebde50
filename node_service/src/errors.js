// An error that maps 1:1 onto an HTTP answer `{"error": code, "message": text}`.
export class ApiError extends Error {
  constructor(status, code, message, headers = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}
