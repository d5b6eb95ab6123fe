"""DS's ``Status`` codes and English messages (dolphinscheduler-api ``enums/Status.java``, 3.2.2), the
subset these routes answer with. ``{0}``/``{1}`` are filled as DS's ``MessageFormat`` does."""

from __future__ import annotations

from enum import Enum


class Status(Enum):
    SUCCESS = (0, "success")
    INTERNAL_SERVER_ERROR_ARGS = (10000, "Internal Server Error: {0}")
    REQUEST_PARAMS_NOT_VALID_ERROR = (10001, "request parameter {0} is not valid")
    TASK_INSTANCE_NOT_FOUND = (10008, "task instance not found")
    USER_NOT_EXIST = (10010, "user {0} not exists")
    PROJECT_NOT_FOUND = (10018, "project {0} not found ")
    PROJECT_ALREADY_EXISTS = (10019, "project {0} already exists")
    TASK_INSTANCE_NOT_EXISTS = (10020, "task instance {0} does not exist")
    TASK_INSTANCE_NOT_SUB_WORKFLOW_INSTANCE = (10021, "task instance {0} is not sub process instance")
    SCHEDULE_CRON_ONLINE_FORBID_UPDATE = (10023, "online status does not allow update operations")
    SCHEDULE_CRON_CHECK_FAILED = (10024, "scheduler crontab expression validation failure: {0}")
    DATASOURCE_EXIST = (10015, "data source name already exists")
    CREATE_DATASOURCE_ERROR = (10033, "create datasource error")
    UPDATE_DATASOURCE_ERROR = (10034, "update datasource error")
    QUERY_DATASOURCE_ERROR = (10035, "query datasource error")
    CONNECT_DATASOURCE_FAILURE = (10036, "connect datasource failure")
    CREATE_ALERT_GROUP_ERROR = (10027, "create alert group error")
    QUERY_ALL_ALERTGROUP_ERROR = (10028, "query all alertgroup error")
    LIST_PAGING_ALERT_GROUP_ERROR = (10029, "list paging alert group error")
    UPDATE_ALERT_GROUP_ERROR = (10030, "update alert group error")
    DELETE_ALERT_GROUP_ERROR = (10031, "delete alert group error")
    CONNECTION_TEST_FAILURE = (10037, "connection test failure")
    DELETE_DATA_SOURCE_FAILURE = (10038, "delete data source failure")
    QUERY_ALERT_GROUP_ERROR = (10180, "query alert group error")
    RESOURCE_NOT_EXIST = (20004, "resource not exist")
    USER_NO_OPERATION_PERM = (30001, "user has no operation privilege")
    USER_NO_OPERATION_PROJECT_PERM = (30002, "user {0} is not has project {1} permission")
    CREATE_PROJECT_ERROR = (10048, "create project error")
    DELETE_PROJECT_ERROR = (10050, "delete project error")
    CREATE_SCHEDULE_ERROR = (10076, "create schedule error")
    UPDATE_SCHEDULE_ERROR = (10077, "update schedule error")
    PUBLISH_SCHEDULE_ONLINE_ERROR = (10078, "publish schedule online error")
    OFFLINE_SCHEDULE_ERROR = (10079, "offline schedule error")
    QUERY_TASK_INSTANCE_LOG_ERROR = (10103, "view task instance log error: {0}")
    QUERY_PROCESS_INSTANCE_BY_ID_ERROR = (10116, "query process instance by id error")
    SCHEDULE_CRON_REALEASE_NEED_NOT_CHANGE = (10126, "schedule release is already {0}")
    DELETE_PROJECT_ERROR_DEFINES_NOT_NULL = (10137, "please delete the process definitions in project first!")
    PREVIEW_SCHEDULE_ERROR = (10139, "preview schedule error")
    PARSE_TO_CRON_EXPRESSION_ERROR = (10140, "parse cron to cron expression error")
    SCHEDULE_START_TIME_END_TIME_SAME = (10141, "The start time must not be the same as the end")
    START_TIME_BIGGER_THAN_END_TIME_ERROR = (80003, "start time bigger than end time error")
    FORCE_TASK_SUCCESS_ERROR = (10165, "force task success error")
    TASK_INSTANCE_STATE_OPERATION_ERROR = (
        10166, "the status of task instance {0} is {1},Cannot perform force success operation")
    DATASOURCE_OTHER_PARAMS_ILLEGAL = (10171, "datasource other params illegal")
    DATASOURCE_TYPE_NOT_EXIST = (10167, "data source type not exist")
    PROCESS_DEFINITION_NAME_EXIST = (10168, "process definition name {0} already exists")
    PROJECT_NOT_EXIST = (10190, "This project was not found. Please refresh page.")
    TASK_INSTANCE_HOST_IS_NULL = (10191, "task instance host is null")
    SCHEDULE_NOT_EXISTS = (10203, "schedule {0} does not exist")
    SCHEDULE_ALREADY_EXISTS = (10204, "workflow {0} schedule {1} already exist, please update or delete it")
    PROCESS_INSTANCE_NOT_EXIST = (50001, "process instance {0} does not exist")
    PROCESS_DEFINE_NOT_EXIST = (50003, "process definition {0} does not exist")
    PROCESS_DEFINE_NOT_RELEASE = (50004, "process definition {0} process version {1} not online")
    PROCESS_INSTANCE_STATE_OPERATION_ERROR = (
        50006, "the status of process instance {0} is {1},Cannot perform {2} operation")
    SUB_PROCESS_INSTANCE_NOT_EXIST = (50007, "the task belong to process instance does not exist")
    PROCESS_INSTANCE_NOT_SUB_PROCESS_INSTANCE = (50010, "process instance {0} is not sub process instance")
    PROCESS_DEFINE_NOT_ALLOWED_EDIT = (50008, "process definition {0} does not allow edit")
    START_PROCESS_INSTANCE_ERROR = (50014, "start process instance error")
    EXECUTE_PROCESS_INSTANCE_ERROR = (50015, "execute process instance error")
    DATA_IS_NOT_VALID = (50017, "data {0} not valid")
    PROCESS_DEFINE_STATE_ONLINE = (50021, "process definition [{0}] is already online")
    SCHEDULE_STATE_ONLINE = (50023, "the status of schedule {0} is already online")
    IMPORT_PROCESS_DEFINE_ERROR = (50029, "import process definition error")
    START_NODE_NOT_EXIST_IN_LAST_PROCESS = (10207, "this node {0} does not exist in the latest process definition")
    TASK_GROUP_NAME_EXSIT = (130001, "this task group name is repeated in a project")
    TASK_GROUP_SIZE_ERROR = (130002, "task group size error")
    CREATE_TASK_GROUP_ERROR = (130008, "create task group error")
    UPDATE_TASK_GROUP_ERROR = (130009, "update task group list error")
    QUERY_TASK_GROUP_LIST_ERROR = (130010, "query task group list error")
    ALERT_GROUP_NOT_EXIST = (10011, "alarm group not found")
    ALERT_GROUP_EXIST = (10012, "alarm group already exists")
    ACCESS_TOKEN_NOT_EXIST = (70015, "access token not exist, tokenId {0}")
    # login and access tokens (routers/login.py, routers/access_tokens.py)
    USER_NAME_NULL = (10004, "user name is null")
    USER_NAME_PASSWD_ERROR = (10013, "user name or password error")
    LOGIN_SUCCESS = (10042, "login success")
    USER_LOGIN_FAILURE = (10043, "user login failure")
    SIGN_OUT_ERROR = (10123, "sign out error")
    CREATE_ACCESS_TOKEN_ERROR = (70010, "create access token error")
    GENERATE_TOKEN_ERROR = (70011, "generate token error")
    QUERY_ACCESSTOKEN_LIST_PAGING_ERROR = (70012, "query access token list paging error")
    UPDATE_ACCESS_TOKEN_ERROR = (70013, "update access token error")
    DELETE_ACCESS_TOKEN_ERROR = (70014, "delete access token error")
    QUERY_ACCESSTOKEN_BY_USER_ERROR = (70016, "query access token by user error")

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def template(self) -> str:
        return self.value[1]

    def msg(self, *args: object) -> str:
        out = self.template
        for i, a in enumerate(args):
            out = out.replace("{" + str(i) + "}", str(a))
        return out
