import type { FastifyError, FastifyInstance } from "fastify";
import { LifelineError, type ErrorBody } from "../protocol/index.js";

/** Every error leaves the API as `{code, message}` with the code's status; causes stay in the log. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | LifelineError, request, reply) => {
    let body: ErrorBody;
    let status: number;
    if (error instanceof LifelineError) {
      body = { code: error.code, message: error.message };
      status = error.httpStatus;
    } else if (error.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      body = { code: "PAYLOAD_TOO_LARGE", message: "Request body is too large" };
      status = 413;
    } else if (typeof error.statusCode === "number" && error.statusCode >= 400 && error.statusCode < 500) {
      body = { code: "VALIDATION_FAILED", message: `Invalid request: ${error.message}` };
      status = 400;
    } else {
      request.log.error({ err: error }, "request failed");
      body = { code: "INTERNAL", message: "Internal server error (see the server log)" };
      status = 500;
    }
    if (status < 500) request.log.info({ code: body.code }, body.message);
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ code: "ROUTE_NOT_FOUND", message: `No route ${request.method} ${request.url.split("?")[0]}` });
  });
}
